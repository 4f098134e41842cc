"""End to end in real headless Chromium (Debian's, driven by Playwright) against a live server
whose in-process worker sends to the sandbox: the supporter's one click, the operator's view."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser

from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service.links import link_path
from dispatcher.settings import RetrySettings, SandboxSettings, Settings, WorkerSettings
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN, ROOT
from tests.web.conftest import OPERATOR_TOKEN, context_of, live_server, web_settings

CHROMIUM = (
    os.environ.get("DISPATCHER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
SCREENSHOTS = ROOT / "var" / "screenshots"
EMAIL_LABEL = re.compile("^Your email \\(never shown publicly")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists() and os.environ.get("DISPATCHER_REQUIRE_BROWSER"):
    raise RuntimeError(f"DISPATCHER_REQUIRE_BROWSER is set but {CHROMIUM} does not exist")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Chromium is not installed (make test installs Debian's chromium when it can)",
)


async def status_link(app: FastAPI) -> str:
    """The newest appeal's status link, as the supporter's emails carry it (the pages
    never show it: an address alone tells nothing)."""
    service = context_of(app).service
    [newest] = await service.store.list_deliveries(newest_first=True, limit=1)
    return link_path(service, "status", newest.appeal_id)


def to_officials(sandbox: Sandbox) -> list[Any]:
    """Emails the sandbox took for officials (not the supporters' receipts)."""
    return [m for m in sandbox.emails if "@example." not in str(m["To"])]


def service_settings(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox, **overrides: Any
) -> Settings:
    return web_settings(
        tmp_path,
        campaigns_dir,
        retry=RetrySettings(base_seconds=0.05, max_seconds=0.2, max_attempts=1, fast_tries=1),
        worker=WorkerSettings(idle_seconds=0.05),
        fax={},  # status by polling here; the webhook has its own tests
        sandbox=SandboxSettings(
            smtp_port=sandbox.smtp_port,
            fax_port=sandbox.fax_port,
            x_port=sandbox.x_port,
            directory=sandbox.directory,
            fax_transmit_seconds=0.05,
        ),
        **overrides,
    )


async def test_supporter_edits_the_letter_sends_once_and_watches_it_arrive(
    browser: Browser,
    tmp_path: Path,
    campaigns_dir: Path,
) -> None:
    from playwright.async_api import expect

    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox:
        app = create_app(service_settings(tmp_path, campaigns_dir, sandbox))
        async with app.router.lifespan_context(app), live_server(app) as base:
            page = await browser.new_page(viewport={"width": 900, "height": 1400})
            await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
            await expect(page.get_by_role("heading", level=1)).to_contain_text("Xinjiang")
            letter = page.get_by_role("textbox", name=re.compile("^Letter"))
            await letter.fill(
                "I write to ask you to free every person detained arbitrarily in Xinjiang."
            )
            await page.get_by_label("Your name", exact=True).fill("Ana Lima")
            await page.get_by_role("textbox", name=EMAIL_LABEL).fill("ana@example.org")
            await page.get_by_role("textbox", name=re.compile("^Country")).fill("Brazil")
            await expect(page.locator("#tweet-count")).to_contain_text("of 280 characters")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=SCREENSHOTS / "supporter-page.png", full_page=True)
            await page.get_by_role("button", name="Send my appeal").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text(
                "Thank you: we have your appeal"
            )
            await page.screenshot(path=SCREENSHOTS / "supporter-sent.png", full_page=True)
            await page.goto(base + await status_link(app))
            rows = page.locator("#appeal-status tbody tr")
            await expect(rows).to_have_count(5)
            await expect(page.locator("#appeal-status .state-delivered")).to_have_count(
                5, timeout=30_000
            )
            # All five went to the sandbox: a rehearsal, and the page says so; the public
            # counter never moves for it.
            await expect(page.locator("#total-actions")).to_have_text("0")
            await expect(page.locator("#rehearsal")).to_contain_text("nothing reaches the")
            await page.screenshot(path=SCREENSHOTS / "supporter-status.png", full_page=True)
        officials = to_officials(sandbox)
        counts = dict(sandbox.delivered_counts(), email=len(officials))
        assert counts == {"email": 2, "fax": 2, "twitter": 1}
        bodies = [m.get_content() for m in officials]
        assert all("free every person detained arbitrarily" in b for b in bodies)


async def test_operator_sees_the_live_log_and_retries_a_failed_delivery(
    browser: Browser,
    tmp_path: Path,
    campaigns_dir: Path,
) -> None:
    from playwright.async_api import expect

    # The first email is refused once; with one attempt allowed it ends failed until retried.
    async with Sandbox(
        tmp_path / "box", email_faults=Faults(fail_first=1), fax_transmit_seconds=0.05
    ) as sandbox:
        app = create_app(service_settings(tmp_path, campaigns_dir, sandbox))
        async with app.router.lifespan_context(app), live_server(app) as base:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            await page.goto(f"{base}/operator")
            await page.get_by_label("Operator token").fill(OPERATOR_TOKEN)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Delivery log")
            await expect(page.locator("#live-state")).to_have_text("(live)")
            # A supporter acts now, elsewhere: the rows appear without a reload.
            supporter = await browser.new_page()
            await supporter.goto(f"{base}/c/{OPEN_CAMPAIGN}")
            await supporter.get_by_label("Your name", exact=True).fill("Bo Chen")
            await supporter.get_by_role("textbox", name=EMAIL_LABEL).fill("bo@example.org")
            await supporter.get_by_role("button", name="Send my appeal").click()
            log = page.locator("#delivery-log tbody tr")
            await expect(log).to_have_count(5, timeout=30_000)
            failed = page.locator(
                "#delivery-log tbody tr", has=page.locator("td.status", has_text="failed")
            )
            await expect(failed).to_have_count(1, timeout=30_000)
            await expect(failed.locator("td.last-error")).to_contain_text("451")
            await expect(
                page.locator("#delivery-log td.status", has_text="delivered")
            ).to_have_count(4, timeout=30_000)
            await page.reload()
            await page.screenshot(path=SCREENSHOTS / "operator-dashboard.png", full_page=True)
            failed = page.locator(
                "#delivery-log tbody tr", has=page.locator("td.status", has_text="failed")
            )
            await failed.get_by_role("button", name="Retry").click()
            await expect(
                page.locator("#delivery-log td.status", has_text="delivered")
            ).to_have_count(5, timeout=30_000)
        assert len(to_officials(sandbox)) == 2


async def test_api_docs_render_offline_from_local_assets(
    browser: Browser,
    tmp_path: Path,
    campaigns_dir: Path,
) -> None:
    from playwright.async_api import expect

    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with app.router.lifespan_context(app), live_server(app) as base:
        page = await browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(f"{base}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Appeal dispatcher")
        await expect(page.get_by_text("/api/campaigns/{campaign_id}/appeals").first).to_be_visible()
        # Authorize with the operator token, then call an operator endpoint from the page.
        await page.locator(".swagger-ui .btn.authorize").first.click()
        dialog = page.locator(".swagger-ui .dialog-ux")
        await dialog.locator("input").fill(OPERATOR_TOKEN)
        await dialog.locator("button.authorize").click()
        await dialog.locator("button.btn-done").click()
        deliveries = page.locator(".opblock", has=page.locator('[data-path="/api/deliveries"]'))
        await deliveries.locator(".opblock-summary").click()
        await deliveries.locator("button.try-out__btn").click()
        await deliveries.locator("button.execute").click()
        status = deliveries.locator(".live-responses-table tbody .response-col_status").first
        await expect(status).to_have_text("200", timeout=10_000)
        await status.scroll_into_view_if_needed()
        await page.screenshot(path=str(SCREENSHOTS / "docs-authorized.png"))
        assert requested and all(url.startswith(base) for url in requested)
        await page.close()


ERROR_WORDS = {
    "en": {
        "letter_over": "You have 1 character too many (10,001 of 10,000)",
        "post_over": "too long for X",
        "post_count": r"\((\d+) of 280",
        "summary": "There is a problem",
        "letter": "Your letter must be 10,000 characters or fewer; it is 1 too long",
        "post": "Your post is {n} characters once the officials' handles and your name are "
        "added; X allows 280. Shorten it by {over}",
        "name": "Enter your name",
        "email": "Enter an email address in the right format, like name@example.org",
        "not_found": "Page not found",
    },
    "zh": {
        "letter_over": "超出了 1 个字符（10,001 / 10,000）",
        "post_over": "您的帖子超出 X 的限制",
        "post_count": r"（(\d+) / 280",
        "summary": "出现问题",
        "letter": "您的信件最多 10,000 个字符，现在多了 1 个",
        "post": "加上官员的账号和您的姓名后，您的帖子有 {n} 个字符；X 最多允许 280 个。"
        "请缩短 {over} 个",
        "name": "请输入您的姓名",
        "email": "请输入格式正确的电子邮件地址，例如 name@example.org",
        "not_found": "找不到页面",
    },
}


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_errors_sit_beside_their_fields_and_the_counters_agree_with_the_server(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, lang: str, width: int
) -> None:
    """A letter one character too long (in characters outside the basic plane, which a
    UTF-16 count would double), a post too long for X, no name, a half email: the live
    counters give the numbers the server then gives, the refused page lists and links each
    problem, puts each beside its field, keeps what was typed and focuses the first one;
    in English and in Chinese."""
    from playwright.async_api import expect

    words = ERROR_WORDS[lang]
    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with app.router.lifespan_context(app), live_server(app) as base:
        page = await browser.new_page(viewport={"width": width, "height": 844})
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}?lang={lang}&letter=en")
        await page.locator("#message").fill("😀" * 10_001)
        await expect(page.locator("#message-count")).to_have_text(words["letter_over"])
        await page.locator("#tweet").fill("Free everyone detained in Xinjiang now. " * 7)
        counter = page.locator("#tweet-count")
        await expect(counter).to_contain_text(words["post_over"])
        shown = re.search(words["post_count"], await counter.inner_text())
        assert shown is not None
        await page.locator("#email").fill("ana@")
        await page.locator("button.send").click()
        summary = page.locator("#error-summary")
        await expect(summary).to_contain_text(words["summary"])
        links = summary.get_by_role("link")
        weighed = int(shown.group(1))
        await expect(links).to_have_text(
            [
                words["letter"],
                words["post"].format(n=weighed, over=weighed - 280),
                words["name"],
                words["email"],
            ]
        )
        await expect(page.locator("#message")).to_be_focused()
        await expect(page.locator("#message-count")).to_have_text(words["letter_over"])
        await expect(page.locator("#email")).to_have_value("ana@")
        await expect(page.locator("#email")).to_have_attribute("aria-describedby", "email-error")
        await links.nth(2).click()
        await expect(page.locator("#name")).to_be_focused()
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"form-errors-{lang}-{width}.png", full_page=True)
        await page.goto(f"{base}/c/does-not-exist")
        await expect(page.get_by_role("heading", level=1)).to_have_text(words["not_found"])
        await page.screenshot(path=SCREENSHOTS / f"not-found-{lang}-{width}.png")


STATUS_WORDS = {
    "en": {
        "email": "Email",
        "fax": "Fax",
        "email_failed": "The official's mail server refused the email. We will not try again.",
        "fax_failed": "The fax number is out of service. We will not try again.",
        "goal": "0 of 1,000",  # a rehearsal on the sandbox: the public counter never moves
    },
    "zh": {
        "email": "电子邮件",
        "fax": "传真",
        "email_failed": "官员的邮件服务器拒收了这封邮件。我们不会再尝试。",  # no space between
        "fax_failed": "该传真号码已停用。我们不会再尝试。",
        "goal": "0 / 1,000",
    },
}


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_the_status_page_says_what_happened_in_plain_words(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, lang: str, width: int
) -> None:
    """Refusals on the status page, live, in the supporter's language (the rows are
    redrawn from the API, which answers in the language the page was chosen in)."""
    from playwright.async_api import expect

    words = STATUS_WORDS[lang]
    faults = Faults(refuse=frozenset({"+861062381025"}))
    email_faults = Faults(refuse=frozenset({"english@mail.gov.cn"}))
    async with Sandbox(
        tmp_path / "box", fax_faults=faults, email_faults=email_faults, fax_transmit_seconds=0.05
    ) as sandbox:
        app = create_app(service_settings(tmp_path, campaigns_dir, sandbox))
        async with app.router.lifespan_context(app), live_server(app) as base:
            page = await browser.new_page(viewport={"width": width, "height": 844})
            await page.goto(f"{base}/c/{OPEN_CAMPAIGN}?lang={lang}")
            await page.locator("#name").fill("Ana Lima")
            await page.locator("#email").fill("ana@example.org")
            await page.locator("button.send").click()
            await page.locator("#confirm-notice, h1").first.wait_for()
            await page.goto(base + await status_link(app))
            rows = page.locator("#appeal-status tbody tr")
            await expect(page.locator("#appeal-status .state-failed")).to_have_count(2)
            await expect(page.locator("#appeal-status .state-delivered")).to_have_count(3)
            await expect(rows.filter(has_text=words["email"]).first).to_contain_text(
                words["email_failed"]
            )
            await expect(rows.filter(has_text=words["fax"]).first).to_contain_text(
                words["fax_failed"]
            )
            await expect(page.locator("#goal-count")).to_have_text(words["goal"])
            text = await page.locator("#appeal-status").inner_text()
            assert "fatalErrorType" not in text and "SMTP" not in text
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.screenshot(
                path=SCREENSHOTS / f"status-words-{lang}-{width}.png", full_page=True
            )


async def test_the_operator_on_a_phone_cancels_after_confirming_and_is_told(
    browser: Browser, tmp_path: Path, campaigns_dir: Path
) -> None:
    """390 px: no sideways scrolling, buttons big enough to tap, Cancel asks first (a
    dismissed question cancels nothing), and the page says what was done."""
    from playwright.async_api import expect

    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with app.router.lifespan_context(app), live_server(app) as base:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
        await page.get_by_label("Your name", exact=True).fill("Ana Lima")
        await page.get_by_role("textbox", name=EMAIL_LABEL).fill("ana@example.org")
        await page.get_by_role("button", name="Send my appeal").click()
        await page.goto(f"{base}/operator")
        await page.get_by_label("Operator token").fill(OPERATOR_TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        rows = page.locator("#delivery-log tbody tr")
        await expect(rows).to_have_count(5)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        cancel = rows.first.get_by_role("button", name="Cancel")
        # The live log may redraw a row as the page opens: measure it once it stands.
        await expect(cancel).to_be_visible()
        await expect(page.locator("#live-state")).to_have_text("(live)")
        box = await cancel.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44
        page.once("dialog", lambda dialog: dialog.dismiss())
        await cancel.click()
        await expect(rows.first.locator("td.status")).to_have_text("queued")
        page.once("dialog", lambda dialog: dialog.accept())
        await cancel.click()
        await expect(page.locator("#done")).to_contain_text("is cancelled: it will not be sent.")
        await expect(page.locator("#delivery-log td.status", has_text="cancelled")).to_have_count(1)
        await page.screenshot(path=SCREENSHOTS / "operator-phone.png", full_page=True)


async def test_totals_and_chart_follow_the_live_log_and_times_are_written_one_way(
    browser: Browser, tmp_path: Path, campaigns_dir: Path
) -> None:
    """The dashboard's totals and chart redraw as deliveries arrive (no reload), and a
    time is written one way everywhere: date, time and zone."""
    from playwright.async_api import expect

    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox:
        app = create_app(service_settings(tmp_path, campaigns_dir, sandbox))
        async with app.router.lifespan_context(app), live_server(app) as base:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            await page.goto(f"{base}/operator")
            await page.get_by_label("Operator token").fill(OPERATOR_TOKEN)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#live-state")).to_have_text("(live)")
            total = page.locator(
                f'.campaign-totals[data-campaign="{OPEN_CAMPAIGN}"] .actions-total'
            )
            await expect(total).to_have_text("0")
            supporter = await browser.new_page()
            await supporter.goto(f"{base}/c/{OPEN_CAMPAIGN}")
            await supporter.get_by_label("Your name", exact=True).fill("Bo Chen")
            await supporter.get_by_role("textbox", name=EMAIL_LABEL).fill("bo@example.org")
            await supporter.get_by_role("button", name="Send my appeal").click()
            rehearsed = page.locator(
                f'.campaign-totals[data-campaign="{OPEN_CAMPAIGN}"] .rehearsal-total'
            )
            await expect(rehearsed).to_have_text("5", timeout=30_000)  # all to the sandbox
            await expect(total).to_have_text("0")  # so none of it counts
            await expect(page.locator(".chart .legend")).to_contain_text("email 2")
            await expect(page.locator("#delivery-log td.updated").first).to_have_text(
                re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
            )
            await page.screenshot(path=SCREENSHOTS / "operator-live-1280.png", full_page=True)


async def test_on_a_phone_the_operator_cancels_a_whole_selection_after_one_question(
    browser: Browser, tmp_path: Path, campaigns_dir: Path
) -> None:
    """390 px: every delivery the filter selects is cancelled at once after one question
    that says how many; the supporter list and a delivery's page fit the screen."""
    from playwright.async_api import expect

    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with app.router.lifespan_context(app), live_server(app) as base:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
        await page.get_by_label("Your name", exact=True).fill("Ana Lima")
        await page.get_by_role("textbox", name=EMAIL_LABEL).fill("ana@example.org")
        await page.get_by_role("button", name="Send my appeal").click()
        await page.goto(f"{base}/operator")
        await page.get_by_label("Operator token").fill(OPERATOR_TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        await page.goto(f"{base}/operator?channel=fax")
        bulk = page.locator(".bulk-form button", has_text="Cancel 2")
        box = await bulk.bounding_box()
        assert box is not None and box["height"] >= 44
        questions: list[str] = []

        async def answer(dialog: Any) -> None:
            questions.append(dialog.message)
            await dialog.accept()

        page.on("dialog", answer)
        await bulk.click()
        await expect(page.locator("#done")).to_contain_text(
            "2 deliveries in this selection are cancelled"
        )
        assert questions == ["Cancel 2 deliveries? They will not be sent."]
        await expect(page.locator("#delivery-log td.status", has_text="cancelled")).to_have_count(2)
        await expect(page.locator(".audit-log li").first).to_contain_text(
            "cancelled 2 deliveries (channel=fax)"
        )
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.screenshot(path=SCREENSHOTS / "operator-bulk-390.png", full_page=True)
        await page.goto(f"{base}/operator/supporters?q=ana")
        await expect(page.locator(".supporters-table tbody tr")).to_have_count(1)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.screenshot(path=SCREENSHOTS / "operator-supporters-390.png", full_page=True)
        await page.goto(f"{base}/operator/deliveries/1")
        await page.get_by_role("button", name="Cancel").click()
        await expect(page.locator("#done")).to_contain_text("Delivery 1 is cancelled")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.screenshot(path=SCREENSHOTS / "operator-detail-390.png", full_page=True)


SUPPORTER_WORDS = {
    "en": {
        "heading": "Missing and arbitrarily detained in Xinjiang",
        "letter": "I am distressed to learn",
        "no_name": "Enter your name",
        "thanks": "Thank you: we have your appeal",
        "switch": "中文",
    },
    "zh": {
        "heading": "新疆的失踪与任意拘押",
        "letter": "我得知，来自以穆斯林为主的少数民族",
        "no_name": "请输入您的姓名",
        "thanks": "谢谢：我们已收到您的呼吁",
        "switch": "English",
    },
}


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_a_supporter_in_english_or_chinese_is_corrected_then_sends_in_one_step(
    browser: Browser, tmp_path: Path, campaigns_dir: Path, lang: str, width: int
) -> None:
    """The whole supporter flow in each language and width: the language switch, the
    sample letter in the page's language (the Chinese one marked as a translation), an
    error beside its field in that language, one Send, and the status page in it."""
    from playwright.async_api import expect

    words = SUPPORTER_WORDS[lang]
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox:
        app = create_app(service_settings(tmp_path, campaigns_dir, sandbox))
        async with app.router.lifespan_context(app), live_server(app) as base:
            page = await browser.new_page(viewport={"width": width, "height": 844})
            await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")
            if lang == "zh":  # the switch in the header, remembered from then on
                await page.locator("nav.languages").get_by_role("link", name="中文").click()
            await expect(page.locator("html")).to_have_attribute(
                "lang", "zh-Hans" if lang == "zh" else "en"
            )
            await expect(page.get_by_role("heading", level=1)).to_have_text(words["heading"])
            languages = page.locator("nav.languages")
            await expect(languages.get_by_role("link", name=words["switch"])).to_be_visible()
            await expect(page.locator("#message")).to_contain_text(words["letter"])
            if lang == "zh":
                await expect(page.locator("#letter-translation")).to_contain_text("译自英文原信")
            await page.locator("#email").fill("li@example.org")
            await page.locator("button.send").click()
            await expect(page.locator("#name-error")).to_contain_text(words["no_name"])
            await expect(page.locator("#name")).to_be_focused()
            await expect(page.locator("#email")).to_have_value("li@example.org")
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.screenshot(path=SCREENSHOTS / f"{lang}-error-{width}.png", full_page=True)
            await page.locator("#name").fill("李华" if lang == "zh" else "Li Hua")
            await page.goto(f"{base}/c/{OPEN_CAMPAIGN}")  # the campaign page as first seen
            await page.screenshot(path=SCREENSHOTS / f"{lang}-campaign-{width}.png")
            await page.locator("#name").fill("李华" if lang == "zh" else "Li Hua")
            await page.locator("#email").fill("li@example.org")
            await page.locator("button.send").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text(words["thanks"])
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.screenshot(path=SCREENSHOTS / f"{lang}-sent-{width}.png", full_page=True)
            await page.goto(base + await status_link(app))
            await expect(page.locator("#appeal-status .state-delivered")).to_have_count(
                5, timeout=30_000
            )
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.screenshot(path=SCREENSHOTS / f"{lang}-status-{width}.png", full_page=True)
        officials = to_officials(sandbox)
        opening = "尊敬的习近平主席：" if lang == "zh" else "Dear President Xi,"
        assert any(m.get_content().startswith(opening) for m in officials)
