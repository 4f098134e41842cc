"""Errors as a supporter meets them on the pages (no browser): the GOV.UK error pattern,
choices kept, an expired form shown again with everything typed, error pages in the
site's style while the API keeps its JSON."""

from __future__ import annotations

import re

import httpx

from tests.conftest import OPEN_CAMPAIGN
from tests.web.test_pages import PAGE, csrf_of, supporter_form


def summary_links(page: str) -> list[tuple[str, str]]:
    summary = page.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<a href="#([\w-]+)">([^<]+)</a>', summary)


async def test_every_problem_is_listed_linked_and_shown_beside_its_field(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    form = supporter_form(
        csrf_of(page), name="", email="ana@", message="x" * 10_001, tweet="Hi @elonmusk"
    )
    bad = await client.post(PAGE, data=form)
    assert bad.status_code == 422
    assert "<title>Error: " in bad.text
    assert summary_links(bad.text) == [
        ("message", "Your letter must be 10,000 characters or fewer; it is 1 too long"),
        ("tweet", "Your post can mention only the officials of this campaign; remove @elonmusk"),
        ("name", "Enter your name"),
        ("email", "Enter an email address in the right format, like name@example.org"),
    ]
    for field in ("name", "email", "message"):
        assert re.search(
            rf'<p class="field-error" id="{field}-error"><span class="visually-hidden">'
            r"Error:</span> ",
            bad.text,
        ), field
        control = re.search(rf'<(?:input|textarea) id="{field}"[^>]*>', bad.text)
        assert control is not None
        assert 'aria-invalid="true"' in control.group(0)
        assert f"{field}-error" in control.group(0)  # aria-describedby names the message
    assert "supporter." not in bad.text  # no field paths
    assert 'value="ana@"' in bad.text  # what was typed stays


async def test_a_post_mentioning_someone_else_is_refused_in_plain_words(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    form = supporter_form(csrf_of(page), tweet="Free them now @elonmusk")
    bad = await client.post(PAGE, data=form)
    assert summary_links(bad.text) == [
        ("tweet", "Your post can mention only the officials of this campaign; remove @elonmusk")
    ]


async def test_unticking_every_channel_keeps_them_unticked_and_says_what_to_do(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    bad = await client.post(PAGE, data=supporter_form(csrf_of(page), pick=[]))
    assert bad.status_code == 422
    assert summary_links(bad.text) == [
        ("who", "Choose at least one official and one way to reach them")
    ]
    assert 'name="pick" value="xi-jinping:email" checked' not in bad.text
    assert bad.text.count('name="pick"') == 5
    some = await client.post(PAGE, data=supporter_form(csrf_of(page), pick=["cui-tiankai:fax"]))
    assert some.status_code == 303  # and a partial choice goes through as chosen


async def test_an_expired_form_comes_back_with_everything_typed(
    client: httpx.AsyncClient,
) -> None:
    await client.get(PAGE)
    letter = "My own words, typed with care."
    form = supporter_form("expired.token", message=letter, pick=["cui-tiankai:email"])
    again = await client.post(PAGE, data=form)
    assert again.status_code == 403
    assert "please press Send again" in again.text
    assert letter in again.text and 'value="ana@example.org"' in again.text
    assert 'name="pick" value="cui-tiankai:email" checked' in again.text
    assert 'name="pick" value="xi-jinping:email" checked' not in again.text
    sent = await client.post(PAGE, data={**form, "csrf": csrf_of(again)})
    assert sent.status_code == 303  # the page it came back as carries a fresh token
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["rehearsal"]["appeals"] == 1


async def test_pages_answer_errors_as_pages_and_the_api_as_json(
    client: httpx.AsyncClient,
) -> None:
    for path, heading in (
        ("/c/does-not-exist", "Page not found"),
        ("/a/unknown", "Page not found"),
        ("/no/such/page", "Page not found"),
    ):
        page = await client.get(path)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert f"<h1>{heading}</h1>" in page.text and 'href="/"' in page.text
    api = await client.get("/api/campaigns/does-not-exist")
    assert api.status_code == 404 and api.json()["error"]["field"] == "campaign"
    expired = await client.post(f"{PAGE}/reported", data={"csrf": "x", "target": "cui-tiankai"})
    assert expired.status_code == 403 and "<h1>This page has expired</h1>" in expired.text
    assert f'href="/c/{OPEN_CAMPAIGN}"' in expired.text  # back to the campaign
    huge = await client.post(
        PAGE,
        content=b"name=" + b"x" * 300_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413 and "<h1>That was too much to send</h1>" in huge.text
