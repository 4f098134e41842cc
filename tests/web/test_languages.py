"""Chinese and English: the page's language from ?lang=, a cookie or the browser; the
Chinese sample letter, post and salutations of UA 61.21, marked as a translation, sent
with the salutation and closing of the letter's language; errors and reasons in Chinese."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from dispatcher.sandbox import Faults, Sandbox
from dispatcher.settings import IntakeSettings
from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import context_of, running_app, status_path, web_settings
from tests.web.test_operator_tools import send_all
from tests.web.test_pages import stored_appeal_ids

PAGE = f"/c/{OPEN_CAMPAIGN}"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def text_of(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


async def test_lang_in_the_query_is_remembered_and_the_browser_language_is_the_default(
    client: httpx.AsyncClient,
) -> None:
    english = await client.get(PAGE)
    assert '<html lang="en">' in english.text and "Send my appeal" in english.text
    assert 'href="?lang=zh" lang="zh-Hans" hreflang="zh-Hans">中文</a>' in english.text
    chinese = await client.get(f"{PAGE}?lang=zh")
    assert '<html lang="zh-Hans">' in chinese.text and "发送我的呼吁" in chinese.text
    assert "lang=zh" in chinese.headers["set-cookie"]
    assert "Accept-Language" in chinese.headers["vary"]
    # The cookie keeps it, on every page, until English is chosen.
    assert '<html lang="zh-Hans">' in (await client.get("/")).text
    assert '<html lang="en">' in (await client.get(f"{PAGE}?lang=en")).text
    client.cookies.clear()
    browser = await client.get(PAGE, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-Hans">' in browser.text
    other = await client.get(PAGE, headers={"Accept-Language": "fr-FR,de;q=0.8"})
    assert '<html lang="en">' in other.text


async def test_the_chinese_page_has_the_chinese_letter_marked_as_a_translation(
    client: httpx.AsyncClient,
) -> None:
    page = text_of(await client.get(f"{PAGE}?lang=zh"))
    assert "新疆的失踪与任意拘押" in page and "国际特赦组织" in page
    assert "我得知，来自以穆斯林为主的少数民族的60多人" in page
    assert "这封范文译自英文原信" in page
    assert "释放所有在新疆拘禁营和监狱中被任意拘押的人" in page
    assert "习近平" in page and "中华人民共和国主席" in page
    assert re.search(r"请在 \d{4}年\d{1,2}月\d{1,2}日 之前行动", page)
    # The English page can still show the Chinese letter, and the other way round.
    english_with_chinese = text_of(await client.get(f"{PAGE}?lang=en&letter=zh"))
    assert "Send my appeal" in english_with_chinese and "我得知" in english_with_chinese
    chinese_with_english = text_of(await client.get(f"{PAGE}?lang=zh&letter=en"))
    assert "发送我的呼吁" in chinese_with_english and "I am distressed" in chinese_with_english


async def test_form_errors_and_error_pages_speak_chinese(client: httpx.AsyncClient) -> None:
    page = await client.get(f"{PAGE}?lang=zh")
    form = {"csrf": csrf_of(page), "name": "", "email": "ana@", "language": "zh",
            "message": "", "tweet": "", "pick": ["xi-jinping:email"]}  # fmt: skip
    refused = await client.post(PAGE, data=form)
    words = text_of(refused)
    assert refused.status_code == 422
    assert "出现问题" in words and "请输入您的姓名" in words
    assert "请输入格式正确的电子邮件地址" in words
    missing = await client.get("/c/nothing-here")
    assert missing.status_code == 404 and "找不到页面" in missing.text


async def test_a_chinese_letter_opens_and_closes_in_chinese_and_failures_are_told_in_chinese(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    refused = Faults(refuse=frozenset({"chinaembpress_us@mfa.gov.cn"}))
    async with (
        running_app(web_settings(tmp_path, campaigns_dir)) as (app, client),
        Sandbox(tmp_path / "box", email_faults=refused, channels=["email"]) as box,
    ):
        page = await client.get(f"{PAGE}?lang=zh")
        form = {"csrf": csrf_of(page), "name": "李华", "email": "li@example.org",
                "language": "zh", "message": "", "tweet": "", "receipt": "",
                "pick": ["xi-jinping:email", "cui-tiankai:email"]}  # fmt: skip
        sent = await client.post(PAGE, data=form)
        assert sent.status_code == 303
        await send_all(context_of(app), box, campaigns_dir)
        [appeal_id] = await stored_appeal_ids(client)
        link = status_path(client, appeal_id)  # as the supporter's emails carry it
        status = text_of(await client.get(link))
        english = text_of(await client.get(link + "&lang=en"))
    [letter] = [m for m in box.emails if "english@mail.gov.cn" in str(m["To"])]
    body = letter.get_content().replace("\r\n", "\n")
    assert body.startswith("尊敬的习近平主席：\n\n我得知")
    assert "此致\n敬礼！\n\n李华" in body
    assert str(letter["Subject"]) in {"释放在新疆被任意拘押的人", "关闭新疆的拘禁营",
                                      "告知家属他们的亲人在新疆被关押在哪里"}  # fmt: skip
    # Chinese sentences follow each other without a space between them.
    assert "官员的邮件服务器拒收了这封邮件。我们不会再尝试。" in status
    assert "崔天凯" in status and "已送达" in status
    assert "The official's mail server refused the email. We will not try again." in english


async def test_a_limit_reached_is_said_in_the_pages_language(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    limited = IntakeSettings(per_ip_per_minute=1, per_email_per_hour=0)
    async with running_app(web_settings(tmp_path, campaigns_dir, intake=limited)) as (_, client):
        said = {}
        for lang, name in (("en", "Ana Lima"), ("zh", "李华")):
            page = await client.get(f"{PAGE}?lang={lang}")
            form = {"csrf": csrf_of(page), "name": name, "email": f"{lang}@example.org",
                    "language": "en", "message": "", "tweet": "",
                    "pick": ["xi-jinping:email"]}  # fmt: skip
            answer = await client.post(PAGE, data=form)
            said[lang] = (answer.status_code, text_of(answer))
    assert said["en"][0] == 303  # the first appeal from this address went through
    status, words = said["zh"]
    assert status == 429
    assert re.search(r"短时间内来自这里的呼吁太多。请在 \d+ 秒后再试。", words), words


async def test_an_expired_form_comes_back_in_chinese_with_everything_typed(
    client: httpx.AsyncClient,
) -> None:
    await client.get(f"{PAGE}?lang=zh")
    form = {"csrf": "from-before-a-restart", "name": "李华", "email": "li@example.org",
            "language": "zh", "message": "我自己的信。", "tweet": "",
            "pick": ["cui-tiankai:fax"]}  # fmt: skip
    again = await client.post(PAGE, data=form)
    words = text_of(again)
    assert again.status_code == 403
    assert "为了您的安全，此页面已过期，所以还没有发送任何内容。" in words
    assert "我自己的信。" in again.text and 'value="李华"' in again.text
    assert 'value="cui-tiankai:fax" checked' in again.text
    assert re.search(r'value="xi-jinping:email"\s*>', again.text)  # left unticked
