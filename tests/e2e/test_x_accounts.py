"""Posting on X from the supporter's own account, in real Chromium against a live server
whose worker posts to the sandbox X: connect on the campaign page (the sandbox X's consent
page, OAuth 2.0 with PKCE), send, and the post goes out from that account; decline, and
the post is handed to the supporter (a link to X's web intent through our redirect, which
records the opening); a token that is about to expire is refreshed before the post."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route

from dispatcher.sandbox import Faults, Sandbox
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN, free_port, write_open_campaign
from tests.contract.x_openapi import validate_x_request, validate_x_response
from tests.e2e.test_browser import CHROMIUM, SCREENSHOTS, service_settings
from tests.e2e.test_reply_to import links_in, mail_to
from tests.waiting import eventually
from tests.web.conftest import OPERATOR_TOKEN, context_of, live_server

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")


async def sent_by(page: Page, base: str, name: str, email: str) -> None:
    """Send the appeal to the ambassador on X only, from the campaign page as it is."""
    for box in await page.locator("input[name=pick]").all():
        if await box.get_attribute("value") != "cui-tiankai:twitter":
            await box.uncheck()
    await page.locator("#name").fill(name)
    await page.locator("#email").fill(email)
    await page.locator("button.send").click()
    await page.get_by_role("heading", level=1, name="Thank you: we have your appeal").wait_for()


async def consent(page: Page, base: str, username: str, button: str) -> None:
    """From the campaign page to the sandbox X's consent page, and back."""
    await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
    await page.get_by_role("link", name="Connect my X account").click()
    await page.get_by_role("heading", name="Authorize app").wait_for()
    await page.locator("input[name=username]").fill(username)
    await page.get_by_role("button", name=button).click()
    await page.wait_for_url(re.compile(rf"/c/{OPEN_CAMPAIGN}\?x="))


async def posted_by(sandbox: Sandbox, author: str) -> list[dict[str, str]]:
    return await eventually(
        lambda: [t for t in sandbox.tweets if t["author"] == author],
        what=f"a post from @{author}",
        within=20,
    )


def checked_against_x(sandbox: Sandbox) -> list[Any]:
    assert sandbox.x_api is not None
    for seen in sandbox.x_api.exchanges:
        validate_x_request(seen.method, seen.url, seen.headers, seen.body)
        validate_x_response(
            seen.method, seen.url, seen.status, seen.response_headers, seen.response_body
        )
    return sandbox.x_api.exchanges


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> AsyncIterator[tuple[Any, str]]:
    """The app with its worker, live on a port known before it starts (X sends the
    supporter back to DISPATCHER_PUBLIC_URL/x/connected)."""
    write_open_campaign(campaigns_dir, x_mode="own_account")
    port = free_port()
    settings = service_settings(
        tmp_path, campaigns_dir, sandbox, public_url=f"http://127.0.0.1:{port}"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), live_server(app, port=port) as base:
        yield app, base


@pytest.mark.parametrize("width", [390, 1280])
async def test_connect_then_post_from_the_supporters_own_account(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, width: int
) -> None:
    async with (
        Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox,
        served(tmp_path, campaigns_dir, sandbox) as (app, base),
    ):
        page = await browser.new_page(viewport={"width": width, "height": 900})
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
        await page.locator("#x-account").screenshot(path=SCREENSHOTS / f"x-connect-{width}.png")
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}?lang=zh")
        assert "连接我的X账号" in await page.locator("#x-account").inner_text()
        await page.locator("#x-account").screenshot(path=SCREENSHOTS / f"x-connect-zh-{width}.png")
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}?lang=en")
        await consent(page, base, "ana_lima", "Authorize app")
        box = page.locator("#x-account")
        assert "Your X account @ana_lima is connected" in await box.inner_text()
        assert "published from your X account" in await page.locator("#tweet-public").inner_text()
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.screenshot(path=SCREENSHOTS / f"x-connected-{width}.png")
        await sent_by(page, base, "Ana Lima", "ana@example.org")
        assert not await page.locator("#hand-offs").count()
        [post] = await posted_by(sandbox, "ana_lima")
        assert post["text"].startswith("@ChineseEmbinUS @AmbCuiTiankai ")
        assert "Ana Lima" not in post["text"]  # her account says who she is
        report = await context_of(app).service.store.hand_off_counts(OPEN_CAMPAIGN)
        assert report == ({}, 0)
        # The token exchange, the user look-up and the post, as X describes them.
        assert [e.url.split("/2/")[1] for e in checked_against_x(sandbox)] == [
            "oauth2/token",
            "users/me",
            "tweets",
        ]


@pytest.mark.parametrize("width", [390, 1280])
async def test_declined_consent_hands_the_post_to_the_supporter(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, width: int
) -> None:
    async with (
        Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox,
        served(tmp_path, campaigns_dir, sandbox) as (app, base),
    ):
        page = await browser.new_page(viewport={"width": width, "height": 900})
        intents: list[str] = []

        async def x_com(route: Route) -> None:  # this machine never reaches x.com
            intents.append(route.request.url)
            await route.fulfill(status=200, content_type="text/html", body="<h1>X</h1>")

        await page.route("https://x.com/**", x_com)
        await consent(page, base, "ana_lima", "Cancel")
        notice = await page.locator("#notice").inner_text()
        assert "Your X account is not connected" in notice
        assert "nothing is posted for you" in await page.locator("#tweet-public").inner_text()
        await sent_by(page, base, "Ana Lima", "ana@example.org")
        handed = page.locator("#hand-offs")
        assert "We cannot post on X for you" in await handed.inner_text()
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.screenshot(path=SCREENSHOTS / f"x-hand-off-{width}.png", full_page=True)
        sent = page.url
        await page.goto(sent + "&lang=zh")  # the same page in Chinese
        assert "现在请在X上发布" in await page.locator("#hand-offs").inner_text()
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.screenshot(path=SCREENSHOTS / f"x-hand-off-zh-{width}.png", full_page=True)
        await page.goto(sent + "&lang=en")
        await handed.get_by_role("link").first.click()
        await page.wait_for_url(re.compile(r"^https://x\.com/intent/post\?text="))
        assert "%40ChineseEmbinUS" in intents[0] or "@ChineseEmbinUS" in intents[0]
        service = context_of(app).service
        counts = await service.store.hand_off_counts(OPEN_CAMPAIGN)
        assert counts == ({"cui-tiankai": 1}, 1)
        log = await service.store.list_deliveries(campaign_id=OPEN_CAMPAIGN)
        assert [(e.status.value, e.provider) for e in log] == [("handed_off", "hand_off")]

        # The status page (its link came by email) gives the post again.
        receipt = await mail_to(sandbox, "ana@example.org", "Your appeal")
        assert "ready for you to post from your own account" in receipt.get_content()
        await page.goto(base + links_in(receipt)["status"])
        row = page.locator("#appeal-status .state-handed_off")
        await row.get_by_role("link", name="Post it on X").wait_for()
        assert "We cannot post this on X for you" in await row.inner_text()
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.screenshot(path=SCREENSHOTS / f"x-status-{width}.png", full_page=True)

        # The operator's dashboard counts it apart, as unverified.
        await page.goto(f"{base}/operator")
        await page.get_by_label("Operator token").fill(OPERATOR_TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        totals = page.locator(f'.campaign-totals[data-campaign="{OPEN_CAMPAIGN}"]')
        await totals.wait_for()
        assert "1 X post handed to its supporter" in await totals.inner_text()
        await page.screenshot(path=SCREENSHOTS / f"x-operator-{width}.png", full_page=True)
        assert sandbox.tweets == []


async def test_an_expired_token_is_refreshed_in_the_browser_flow(
    browser: Browser, tmp_path: Path, campaigns_dir: Path
) -> None:
    faults = Faults(x_token_seconds=30)  # about to expire: refreshed before the post
    async with (
        Sandbox(tmp_path / "box", x_faults=faults, fax_transmit_seconds=0.05) as sandbox,
        served(tmp_path, campaigns_dir, sandbox) as (_app, base),
    ):
        page = await browser.new_page(viewport={"width": 390, "height": 900})
        await consent(page, base, "li_hua", "Authorize app")
        await sent_by(page, base, "Li Hua", "li@example.org")
        await posted_by(sandbox, "li_hua")
        grants = [e.body for e in checked_against_x(sandbox) if e.url.endswith("oauth2/token")]
        assert [b"grant_type=authorization_code" in g for g in grants] == [True, False]
        assert b"grant_type=refresh_token" in grants[1]
