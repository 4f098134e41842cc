"""axe-core over every page a supporter or an operator sees, at 390 and 1280 px: no
violation of serious or critical impact. axe.min.js comes with axe-playwright-python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page

from dispatcher.service.links import link_path
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN
from tests.e2e.test_browser import (
    CHROMIUM,
    SCREENSHOTS,
    status_link,
)
from tests.web.conftest import OPERATOR_TOKEN, context_of, live_server, web_settings

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")
AXE = Axe()


async def serious(page: Page) -> list[dict[str, Any]]:
    results = await AXE.run(page)
    found = results.response["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "where": [n["target"] for n in v["nodes"]][:3]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_no_page_has_a_serious_accessibility_violation(
    browser: Browser,
    tmp_path: Path,
    campaigns_dir: Path,
    lang: str,
    width: int,
) -> None:
    """In English and in Chinese (chosen once with ?lang=, then kept by its cookie)."""
    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with app.router.lifespan_context(app), live_server(app) as base:
        page = await browser.new_page(viewport={"width": width, "height": 844})
        found: dict[str, list[dict[str, Any]]] = {}

        async def check(name: str) -> None:
            found[name] = await serious(page)
            shot = f"page-{lang}-{width}-{name.replace(' ', '-')}.png"
            await page.screenshot(path=SCREENSHOTS / shot, full_page=True)  # to look at

        await page.goto(f"{base}/?lang={lang}")
        await check("home")
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}?source=newsletter")
        for details in await page.locator("details.call-script, details.postal").all():
            await details.locator("summary").click()  # the call script and the addresses open
        await check("campaign")
        await page.locator("#email").fill("ana@")
        await page.locator("button.send").click()
        await page.locator("#error-summary").wait_for()
        await check("campaign with errors")
        await page.locator("#name").fill("Ana Lima")
        await page.locator("#email").fill("ana@example.org")
        await page.locator("#tweet").fill("Free everyone detained in Xinjiang.")
        await page.locator("#message").fill("Please free everyone detained arbitrarily.")
        await page.locator("button.send").click()
        await page.locator("h1").wait_for()
        assert await page.locator("html").get_attribute("lang") == (
            "zh-Hans" if lang == "zh" else "en"
        )
        await check("sent")
        await page.goto(base + await status_link(app))
        await page.locator("#appeal-status").wait_for()
        await check("status")
        service = context_of(app).service
        [newest] = await service.store.list_deliveries(newest_first=True, limit=1)
        for purpose in ("forget", "not-me", "confirm"):  # the links only emails carry
            await page.goto(base + link_path(service, purpose, newest.appeal_id))
            await check(purpose)
        await page.goto(f"{base}/c/ua-61-21")
        await check("closed campaign")
        await page.goto(f"{base}/c/does-not-exist")
        await check("not found")
        await page.goto(f"{base}/operator")
        await check("operator sign-in")
        await page.locator("#token").fill(OPERATOR_TOKEN)
        await page.locator("form.login button").click()
        await page.locator("#delivery-log").wait_for()
        await check("operator dashboard")
        await page.locator("#delivery-log tbody a").first.click()
        await check("operator delivery")
        await page.goto(f"{base}/operator/supporters")
        await check("operator supporters")
    assert {name: v for name, v in found.items() if v} == {}
