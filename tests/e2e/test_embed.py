"""The campaign's form inside another site's page, in Chromium: the organisation's page
(another origin, another site: 127.0.0.1 against localhost) frames /c/{campaign}/embed;
the supporter sends an appeal from it and is thanked inside the frame. The form works
without any cookie of ours (a third-party iframe gets none), and only the campaign's
embed_origins may frame it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import Browser

from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN
from tests.e2e.test_accessibility import serious
from tests.e2e.test_browser import CHROMIUM, SCREENSHOTS
from tests.web.conftest import context_of, live_server, web_settings

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")


def organisations_site(frame: dict[str, str]) -> FastAPI:
    """Another site's page with our form in an iframe (its src set once it is known)."""
    site = FastAPI()

    @site.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return (
            "<!doctype html><html lang='en'><head><meta name='viewport' "
            "content='width=device-width, initial-scale=1'><title>Our campaign</title></head>"
            "<body style='margin:0;font-family:sans-serif'><h1 style='padding:0 1rem'>Act now"
            f"</h1><iframe src='{frame['src']}' title='Send your appeal' width='100%' "
            "height='2600' style='border:0'></iframe></body></html>"
        )

    return site


@pytest.mark.parametrize("width", [390, 1280])
async def test_a_supporter_sends_from_the_form_on_the_organisations_site(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, width: int
) -> None:
    from playwright.async_api import expect

    frame: dict[str, str] = {}
    async with live_server(organisations_site(frame)) as site:
        path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("goal = 1000\n", f'goal = 1000\nembed_origins = ["{site}"]\n', 1),
            encoding="utf-8",
        )
        app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
        async with app.router.lifespan_context(app), live_server(app) as ours:
            embed = ours.replace("127.0.0.1", "localhost") + f"/c/{OPEN_CAMPAIGN}/embed"
            frame["src"] = embed + "?source=partner-site"
            async with httpx.AsyncClient() as client:
                headers = (await client.get(embed)).headers
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(site)
            form = page.frame_locator("iframe")
            await form.locator("#name").fill("Ana Lima")
            await form.locator("#email").fill("ana@example.org")
            await expect(form.locator("header.top")).to_have_count(0)  # not our site's page
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=SCREENSHOTS / f"embed-{width}.png", full_page=False)
            await form.get_by_role("button", name="Send my appeal").click()
            await expect(form.locator("h1")).to_have_text(
                "Thank you: we have your appeal", timeout=30_000
            )
            inner = page.frames[1]
            assert await serious(await _page_of(browser, inner.url)) == []
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=SCREENSHOTS / f"embed-sent-{width}.png", full_page=False)
            service = context_of(app).service
            entries = await service.store.list_deliveries()
            report = await service.store.source_counts(OPEN_CAMPAIGN)
    policy = headers["content-security-policy"]
    assert f"frame-ancestors {site}" in policy and "x-frame-options" not in headers
    assert {e.target_id for e in entries} == {"xi-jinping", "cui-tiankai"}
    assert [(r.source, r.appeals) for r in report] == [("partner-site", 1)]


async def _page_of(browser: Browser, url: str):  # type: ignore[no-untyped-def]
    """The framed page opened on its own, for axe (which checks one document)."""
    page = await browser.new_page()
    await page.goto(url)
    return page


async def test_the_form_is_not_framed_by_other_sites_nor_posted_from_them(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with (
        app.router.lifespan_context(app),
        live_server(app) as ours,
        httpx.AsyncClient(base_url=ours) as client,
    ):
        page = await client.get(f"/c/{OPEN_CAMPAIGN}/embed")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        form = {"csrf": token, "name": "Ana Lima", "email": "ana@example.org",
                    "language": "en", "pick": "xi-jinping:email"}  # fmt: skip
        forged = await client.post(
            f"/c/{OPEN_CAMPAIGN}/embed", data=form, headers={"Origin": "https://evil.example"}
        )
        ours_post = await client.post(
            f"/c/{OPEN_CAMPAIGN}/embed", data=form, headers={"Origin": ours}
        )
        stale = await client.post(
            f"/c/{OPEN_CAMPAIGN}/embed",
            data={**form, "csrf": "1-x.y"},
            headers={"Origin": ours},
        )
        main_page = await client.get(f"/c/{OPEN_CAMPAIGN}")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]  # none listed
    assert main_page.headers["x-frame-options"] == "DENY"
    assert forged.status_code == 403 and stale.status_code == 403
    assert ours_post.status_code == 303
    assert ours_post.headers["location"].startswith(f"/c/{OPEN_CAMPAIGN}/embed/sent?")
