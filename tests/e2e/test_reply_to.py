"""The supporter's address reaches officials only by their choice, once confirmed: the
"ask" flow in real Chromium against a live server whose worker sends to the sandbox.
Unticked, no email to an official carries the address; ticked, those emails wait until
the link emailed to the address is followed, then carry Reply-To; never confirmed, they
expire at the deadline while the rest of the appeal is unaffected."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from dispatcher.campaigns import CampaignCatalog
from dispatcher.sandbox import Sandbox
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN
from tests.e2e.test_browser import (
    CHROMIUM,
    SCREENSHOTS,
    service_settings,
    to_officials,
)
from tests.waiting import eventually
from tests.web.conftest import context_of, live_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")
LINK = re.compile(r"https?://[^/\s]+(/a/\S+)")


async def mail_to(sandbox: Sandbox, address: str, subject: str) -> Any:
    """The first email to ``address`` whose subject starts with ``subject``."""

    def first() -> Any:
        for message in sandbox.emails:
            if str(message["To"]) == address and str(message["Subject"]).strip().startswith(
                subject
            ):
                return message
        return None

    return await eventually(first, what=f"an email {subject!r} to {address}", within=20)


def links_in(message: Any) -> dict[str, str]:
    """The paths of the links in a message, by what they are for."""
    found: dict[str, str] = {}
    for path in LINK.findall(message.get_content()):
        kind = path.split("?")[0].rsplit("/", 1)[-1]
        found[kind if kind in ("confirm", "not-me", "forget") else "status"] = path
    return found


async def send(page: Page, base: str, name: str, email: str, *, reply_to: bool) -> None:
    await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
    # Only Xi Jinping, by email and fax.
    for box in await page.locator("input[name=pick]").all():
        value = await box.get_attribute("value")
        if value not in ("xi-jinping:email", "xi-jinping:fax"):
            await box.uncheck()
    await page.locator("#name").fill(name)
    await page.locator("#email").fill(email)
    choice = page.get_by_role("checkbox", name=re.compile("^Let the officials reply to me"))
    assert not await choice.is_checked()  # unticked unless the supporter ticks it
    if reply_to:
        await choice.check()
    await page.locator("button.send").click()
    await page.get_by_role("heading", level=1, name="Thank you: we have your appeal").wait_for()


@pytest.mark.parametrize("width", [390, 1280])
async def test_the_address_goes_to_officials_only_when_ticked_and_confirmed(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, width: int
) -> None:
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox:
        app = create_app(service_settings(tmp_path, campaigns_dir, sandbox))
        async with app.router.lifespan_context(app), live_server(app) as base:
            page = await browser.new_page(viewport={"width": width, "height": 900})

            # Unticked: the officials' email carries no trace of the address.
            await send(page, base, "Ana Lima", "ana@example.org", reply_to=False)
            assert not await page.locator("#confirm-notice").count()
            await page.screenshot(path=SCREENSHOTS / f"reply-unticked-sent-{width}.png")
            receipt = await mail_to(sandbox, "ana@example.org", "Your appeal")
            ana = [m for m in to_officials(sandbox) if "Ana Lima" in str(m["From"])]
            assert len(ana) == 1 and ana[0]["Reply-To"] is None
            assert "ana@example.org" not in ana[0].as_string()
            assert "confirm" not in links_in(receipt)

            # Ticked: the fax goes, the email waits for the link sent to the address.
            await send(page, base, "Bo Chen", "bo@example.org", reply_to=True)
            notice = page.locator("#confirm-notice")
            await notice.wait_for()
            assert "follow the link we have sent to your address" in await notice.inner_text()
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.screenshot(path=SCREENSHOTS / f"reply-ticked-sent-{width}.png")
            confirm = links_in(await mail_to(sandbox, "bo@example.org", "Confirm your email"))
            await page.goto(base + confirm["status"])
            waiting = page.locator("#appeal-status .state-awaiting_supporter")
            await waiting.wait_for()
            assert "waits until you follow the link" in await waiting.inner_text()
            await page.locator("#appeal-status .state-delivered").wait_for()  # the fax
            assert not [m for m in to_officials(sandbox) if "Bo Chen" in str(m["From"])]
            await page.screenshot(path=SCREENSHOTS / f"reply-waiting-{width}.png", full_page=True)
            await page.goto(base + confirm["confirm"])
            await page.screenshot(path=SCREENSHOTS / f"reply-confirm-{width}.png", full_page=True)
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.get_by_role("button", name="Confirm my address and send").click()
            await page.get_by_role(
                "heading", level=1, name="Thank you: your address is confirmed"
            ).wait_for()
            await page.goto(base + confirm["status"])
            await page.locator("#appeal-status .state-delivered").nth(1).wait_for(timeout=30_000)
            [bo] = [m for m in to_officials(sandbox) if "Bo Chen" in str(m["From"])]
            assert str(bo["Reply-To"]) == "Bo Chen <bo@example.org>"

            # Never confirmed: the email expires at the deadline; the fax was delivered.
            await send(page, base, "Cy Park", "cy@example.org", reply_to=True)
            cy = links_in(await mail_to(sandbox, "cy@example.org", "Confirm your email"))
            await page.goto(base + cy["status"])
            await page.locator("#appeal-status .state-delivered").wait_for()
            service = context_of(app).service
            campaign = CampaignCatalog.load(campaigns_dir).get(OPEN_CAMPAIGN)
            assert campaign is not None
            after = campaign.closes_at + dt.timedelta(seconds=1)
            # A claim at that moment expires what waited past the deadline (the worker's
            # own claims do so once the deadline really passes).
            assert (
                await service.store.claim_due_deliveries(
                    "test", limit=10, lease_seconds=1, now=after
                )
                == []
            )
            await page.goto(base + cy["status"])
            expired = page.locator("#appeal-status .state-expired")
            await expired.wait_for()
            assert "did not confirm your email address before the campaign" in (
                await expired.inner_text()
            )
            await page.screenshot(path=SCREENSHOTS / f"reply-expired-{width}.png", full_page=True)
        assert not [m for m in to_officials(sandbox) if "Cy Park" in str(m["From"])]
        assert sum("Reply-To" in m for m in to_officials(sandbox)) == 1
