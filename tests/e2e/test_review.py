"""The review queue in Chromium, as an operator on a phone and at a desk, in English and
Chinese: the letter shown as a word diff against the sample; Reject refused without a
reason and asked about once more before it acts; a dismissed question rejects nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from dispatcher.models import DeliveryStatus
from dispatcher.service.validation import AppealRequest
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN, submitted
from tests.e2e.test_accessibility import serious
from tests.e2e.test_browser import CHROMIUM, SCREENSHOTS
from tests.web.conftest import OPERATOR_TOKEN, context_of, live_server, web_settings

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")

REJECT = {"en": "Reject", "zh": "拒绝"}


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_reject_asks_for_a_reason_and_a_confirmation(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, lang: str, width: int
) -> None:
    from playwright.async_api import expect

    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("goal = 1000\n", "goal = 1000\nreview_own_letters = true\n", 1))
    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with app.router.lifespan_context(app), live_server(app) as base:
        service = context_of(app).service
        sample = service.catalog.get(OPEN_CAMPAIGN).letter[lang].body  # type: ignore[union-attr]
        written = (
            sample.replace("\n", "\nPlease act now.\n", 1)
            if lang == "en"
            else sample + "请立即行动。"
        )
        held = await submitted(
            service,
            AppealRequest(
                campaign_id=OPEN_CAMPAIGN,
                supporter_name="Ana Lima",
                language=lang,
                supporter_email="ana@example.org",
                message=written,
                channels=["email"],
            ),
        )
        page = await browser.new_page(viewport={"width": width, "height": 900})
        await page.goto(f"{base}/operator?lang={lang}")
        await page.locator("#token").fill(OPERATOR_TOKEN)
        await page.locator("form button[type=submit]").first.click()
        await page.goto(f"{base}/operator/review")
        letter = page.locator(f"#letter-{held.appeal_id}")
        await expect(letter.locator(".letter-changes ins").first).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        assert await serious(page) == []
        await page.screenshot(
            path=SCREENSHOTS / f"review-letter-{lang}-{width}.png", full_page=True
        )
        reject = letter.get_by_role("button", name=REJECT[lang])
        await reject.click()  # no reason: the browser keeps the form back
        note = letter.locator(f"#note-{held.appeal_id}")
        assert await note.evaluate("n => !n.validity.valid")
        await note.fill("Advertising, not about the case")
        page.once("dialog", lambda dialog: dialog.dismiss())
        await reject.click()
        await expect(letter).to_be_visible()
        page.once("dialog", lambda dialog: dialog.accept())
        await reject.click()
        await expect(page.locator("#done")).to_be_visible()
        await page.screenshot(path=SCREENSHOTS / f"review-{lang}-{width}.png", full_page=True)
        statuses = {e.status for e in await service.store.list_deliveries(appeal_id=held.appeal_id)}
    assert statuses == {DeliveryStatus.CANCELLED}
