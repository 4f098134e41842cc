"""The HTML pages without a browser: forms post and redirect, errors re-render, text is escaped."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

import httpx

from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service.validation import AppealRequest
from tests.conftest import OPEN_CAMPAIGN, settings_for, submitted
from tests.web.conftest import (
    OPERATOR_TOKEN,
    MakeClient,
    context_of,
    running_app,
    status_path,
    web_settings,
)

PAGE = f"/c/{OPEN_CAMPAIGN}"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def supporter_form(csrf: str, **overrides: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "csrf": csrf,
        "name": "Ana Lima",
        "email": "ana@example.org",
        "country": "Brazil",
        "language": "en",
        "message": "Please release everyone detained arbitrarily.",
        "tweet": "Release everyone detained arbitrarily in Xinjiang.",
        "pick": ["xi-jinping:email", "cui-tiankai:twitter"],
    }
    form.update(overrides)
    return form


async def test_supporter_page_shows_targets_channels_letter_and_one_send_button(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    assert page.status_code == 200
    html = page.text
    for value in (
        "xi-jinping:email",
        "xi-jinping:fax",
        "cui-tiankai:email",
        "cui-tiankai:fax",
        "cui-tiankai:twitter",
    ):
        assert f'name="pick" value="{value}" checked' in html
    assert "I am distressed to learn" in html
    assert html.count('type="submit" class="send"') == 1
    assert '<label for="name">' in html and '<label for="email">' in html
    assert "2021" not in html.split("Please act by")[1][:80]
    # The ambassador's number can be called with a tap (issue 18, item 10: it was bare text).
    assert 'You can also call: <a href="tel:+12024952266">+12024952266</a>' in html
    assert "set-cookie" in page.headers and "samesite=strict" in page.headers["set-cookie"].lower()


async def test_closed_campaign_says_so_and_accepts_nothing(client: httpx.AsyncClient) -> None:
    page = await client.get("/c/ua-61-21")
    assert "This campaign is closed." in page.text and "10 September 2021" in page.text
    assert 'class="send"' not in page.text
    token = csrf_of(await client.get(PAGE))  # the closed page has no form to take one from
    posted = await client.post("/c/ua-61-21", data=supporter_form(token))
    assert posted.status_code == 410


def form_id_of(page: httpx.Response) -> str:
    found = re.search(r'name="form_id" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


async def test_send_without_javascript_says_the_same_to_everyone_then_the_emailed_link_follows_it(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    form = supporter_form(csrf_of(page), form_id=form_id_of(page))
    sent = await client.post(PAGE, data=form)
    assert sent.status_code == 303
    location = sent.headers["location"]
    assert location.startswith(f"/c/{OPEN_CAMPAIGN}/sent?")
    thanks = await client.get(location)
    assert thanks.status_code == 200
    assert "<h1>Thank you: we have your appeal</h1>" in thanks.text
    assert "<li>Xi Jinping: Email</li>" in thanks.text
    # Pressed twice (the same form): the same submission. From another page (a repeat by
    # anyone who knows the address): counted once, and the same words.
    again = await client.post(PAGE, data=form)
    assert again.headers["location"] == location
    other = await client.get(PAGE)
    repeat = await client.post(PAGE, data={**form, "form_id": form_id_of(other)})
    assert repeat.headers["location"] == location
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["rehearsal"]["appeals"] == 1
    # The live page is the link in the supporter's emails.
    [appeal_id] = await stored_appeal_ids(client)
    assert (await client.get(f"/a/{appeal_id}")).status_code == 404
    status = await client.get(status_path(client, appeal_id))
    assert status.status_code == 200
    assert status.text.count('<span class="word">waiting to be sent</span>') == 2
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in status.text
    assert "/forget" not in status.text  # the deletion link travels only by email


async def stored_appeal_ids(client: httpx.AsyncClient) -> list[str]:
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    found = await client.get("/api/deliveries", headers=operator)
    return sorted({d["appeal_id"] for d in found.json()["deliveries"]})


async def test_form_errors_rerender_escaped_with_the_values_kept(client: httpx.AsyncClient) -> None:
    page = await client.get(PAGE)
    sneaky = "<script>alert(1)</script>"
    bad = await client.post(
        PAGE, data=supporter_form(csrf_of(page), name=sneaky, email="not-an-email")
    )
    assert bad.status_code == 422
    assert "Enter an email address in the right format, like name@example.org" in bad.text
    assert sneaky not in bad.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in bad.text
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["rehearsal"]["appeals"] == 0


async def test_an_emptied_post_is_no_post_never_the_campaigns_words(
    client: httpx.AsyncClient,
) -> None:
    """With X ticked, an emptied post box is an error beside it (the box stays empty);
    without X, nothing is posted. The campaign's post is never put in its place."""
    page = await client.get(PAGE)
    with_x = await client.post(PAGE, data=supporter_form(csrf_of(page), tweet="  "))
    assert with_x.status_code == 422
    assert "Write your post, or untick X to post nothing" in with_x.text
    assert re.search(r'<textarea id="tweet"[^>]*>\s*</textarea>', with_x.text)
    api = await client.post(
        f"/api/campaigns/{OPEN_CAMPAIGN}/appeals",
        json={"supporter": {"name": "Bo Li", "email": "bo@example.org"}, "tweet": "",
              "targets": ["cui-tiankai"], "channels": ["twitter"]},
    )  # fmt: skip
    assert api.status_code == 422 and api.json()["error"]["field"] == "tweet", api.text
    without_x = await client.post(
        PAGE, data=supporter_form(csrf_of(page), tweet="", pick=["xi-jinping:email"])
    )
    assert without_x.status_code == 303, without_x.text[:500]
    [appeal_id] = await stored_appeal_ids(client)
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    deliveries = (await client.get("/api/deliveries", headers=operator)).json()["deliveries"]
    assert {d["channel"] for d in deliveries} == {"email"} and appeal_id


async def test_forms_without_a_valid_csrf_token_are_refused(client: httpx.AsyncClient) -> None:
    await client.get(PAGE)
    forged = await client.post(PAGE, data=supporter_form("forged.token"))
    assert forged.status_code == 403
    client.cookies.clear()
    no_cookie = await client.post(PAGE, data=supporter_form("x.y"))
    assert no_cookie.status_code == 403


async def test_self_reported_action_form(client: httpx.AsyncClient) -> None:
    """Post, redirect, get: reloading the thank-you page reports nothing again; the same
    report from the same supporter counts once; a missing email is said beside the field."""
    page = await client.get(PAGE)
    form = {"csrf": csrf_of(page), "target": "cui-tiankai", "kind": "call"}
    missing = await client.post(f"{PAGE}/reported", data=form)
    assert missing.status_code == 422
    assert '<a href="#rep-email">Enter your email address</a>' in missing.text
    response = await client.post(f"{PAGE}/reported", data={**form, "email": "ana@example.org"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAGE}?reported=new#reported"
    thanks = await client.get(response.headers["location"])
    assert "Thank you: your action is counted (once for each person, official and kind)." in (
        thanks.text
    )
    again = await client.post(f"{PAGE}/reported", data={**form, "email": "ana@example.org"})
    assert again.headers["location"] == f"{PAGE}?reported=new#reported"  # the same words
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["self_reported"]["total"] == 1


async def test_operator_login_sets_a_strict_httponly_cookie(client: httpx.AsyncClient) -> None:
    page = await client.get(PAGE)
    markup = await client.post(PAGE, data=supporter_form(csrf_of(page), name="Ana <b>bold</b>"))
    assert markup.status_code == 422  # names are plain text: never markup in the log
    assert "Enter your name as plain text, without &lt; or &gt;" in markup.text
    await client.post(PAGE, data=supporter_form(csrf_of(page)))
    login_page = await client.get("/operator")
    assert 'name="token"' in login_page.text
    wrong = await client.post(
        "/operator/login", data={"csrf": csrf_of(login_page), "token": "nope"}
    )
    assert wrong.status_code == 401
    signed_in = await client.post(
        "/operator/login", data={"csrf": csrf_of(login_page), "token": OPERATOR_TOKEN}
    )
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    dashboard = await client.get("/operator")
    assert dashboard.status_code == 200
    assert dashboard.text.count('data-delivery="') == 2
    assert "ana@example.org" not in dashboard.text.split("Deliveries")[0]
    csrf = csrf_of(dashboard)
    delivery_id = re.search(r'data-delivery="(\d+)"', dashboard.text).group(1)  # type: ignore[union-attr]
    cancelled = await client.post(
        f"/operator/deliveries/{delivery_id}/cancel", data={"csrf": csrf, "back": "status=queued"}
    )
    location = f"/operator?status=queued&done=cancel%3A{delivery_id}"
    assert cancelled.status_code == 303 and cancelled.headers["location"] == location
    told = await client.get(location)
    assert f"Delivery {delivery_id} is cancelled: it will not be sent." in told.text
    detail = await client.get(f"/operator/deliveries/{delivery_id}")
    assert "cancelled" in detail.text
    # Another site's page can make the browser send the cookie, never a bearer header nor
    # our form token: the API refuses a change on the cookie alone, and reads still work.
    other = re.findall(r'data-delivery="(\d+)"', dashboard.text)[1]
    forged = await client.post(f"/api/deliveries/{other}/cancel")
    assert forged.status_code == 403 and "Authorization: Bearer" in forged.text
    listing = await client.get("/api/deliveries")
    assert listing.status_code == 200
    assert {d["id"]: d["status"] for d in listing.json()["deliveries"]}[int(other)] == "queued"


async def test_operator_dashboard_is_disabled_without_a_token(make_client: MakeClient) -> None:
    async with make_client(operator_token=None) as client:
        page = await client.get("/operator", headers={"Accept": "text/html"})
        # Issue 18, item 8: `serve` prints this address; the page said only "Page not found".
        assert page.status_code == 404
        assert "The operator dashboard is switched off" in page.text
        assert "DISPATCHER_OPERATORS" in page.text and "DISPATCHER_OPERATOR_TOKEN" in page.text
        review = await client.get("/operator/review", headers={"Accept": "text/html"})
        assert "The operator dashboard is switched off" in review.text
        other = await client.get("/nowhere", headers={"Accept": "text/html"})
        assert "Page not found" in other.text


async def test_a_bad_log_filter_gets_the_same_sentence_on_the_page_and_in_the_api(
    client: httpx.AsyncClient,
) -> None:
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    api = await client.get("/api/deliveries?status=lost", headers=operator)
    page = await client.get("/operator?status=lost&channel=email", headers=operator)
    sentence = (
        "status 'lost' is not one of: held, awaiting_supporter, queued, sending, "
        "awaiting_confirmation"
    )
    assert api.status_code == page.status_code == 422
    assert api.json()["error"]["message"].startswith(sentence)
    assert api.json()["error"]["field"] == "status"
    assert sentence in html.unescape(page.text) and 'role="alert"' in page.text
    good = await client.get("/operator?status=queued", headers=operator)
    assert good.status_code == 200 and "Filter not applied" not in good.text


async def test_operator_pages_say_how_a_delivery_was_settled(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    """An X post whose answer was lost is posted again, refused as a duplicate and counted as
    delivered: the log and the delivery's page say it was reconciled, and why."""
    settings = web_settings(tmp_path, campaigns_dir)
    async with (
        running_app(settings) as (app, client),
        Sandbox(tmp_path / "box", x_faults=Faults(drop_first=1), channels=["twitter"]) as box,
    ):
        context = context_of(app)
        request = AppealRequest(
            campaign_id=OPEN_CAMPAIGN,
            supporter_name="Ana Lima",
            supporter_email="ana@example.org",
            channels=["twitter"],
        )
        await submitted(context.service, request)
        worker_settings = settings_for(box, database_url="unused", campaigns_dir=campaigns_dir)
        worker = build_worker(worker_settings, context.service)
        try:
            await worker.run(drain=True)
        finally:
            await close_adapters(worker)
        assert len(box.tweets) == 1
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        log = await client.get("/operator", headers=operator)
        [entry] = (await client.get("/api/deliveries", headers=operator)).json()["deliveries"]
        detail = await client.get(f"/operator/deliveries/{entry['id']}", headers=operator)
    assert entry["settlement"] == "reconciled"
    assert 'delivered<span class="settlement"> (reconciled)</span>' in log.text
    assert "the provider was asked and already had it" in detail.text


async def test_after_sending_thanks_progress_towards_the_goal_and_share_links(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    sent = await client.post(PAGE, data=supporter_form(csrf_of(page)))
    status = await client.get(sent.headers["location"])
    text = status.text
    assert "<h1>Thank you: we have your appeal</h1>" in text
    assert '<progress id="goal" max="1000" value="0">0 of 1,000</progress>' in text
    # A rehearsal (every channel goes to the sandbox): the public counter does not move,
    # and the page says why.
    assert "</span> messages delivered · 0 supporters</p>" in text
    assert "Rehearsal:</strong> this is a test installation." in text
    campaign_url = f"http://testserver/c/{OPEN_CAMPAIGN}"
    links = dict(
        re.findall(r'<a href="([^"]+)" rel="noopener noreferrer"[^>]*>Share on (\w+)', text)
    )
    by_label = {label: html.unescape(href) for href, label in links.items()}
    assert set(by_label) == {"X", "Facebook", "WhatsApp", "Email"}
    assert by_label["Facebook"] == (
        "https://www.facebook.com/sharer/sharer.php?u=" + quote(campaign_url, safe="")
    )
    assert by_label["X"].startswith("https://x.com/intent/post?text=")
    assert quote(campaign_url, safe="") in by_label["WhatsApp"]
    assert by_label["Email"].startswith("mailto:?subject=Missing%20and%20arbitrarily")
    assert f'data-url="{campaign_url}"' in text  # "Copy the link"
    scripts = re.findall(r'<script src="([^"]+)"', text)
    assert scripts and all(src.startswith("/static/") for src in scripts)  # nothing third-party


async def test_a_long_post_is_refused_with_the_live_counters_figure(
    client: httpx.AsyncClient,
) -> None:
    """A 374-character post was refused as "94 too long" (a raw count) while the live
    counter said 153 (with the handles and the name): now both say the weighted length."""
    page = await client.get(PAGE)
    long_post = ("Free everyone detained in Xinjiang now, " * 10)[:374]
    refused = await client.post(PAGE, data=supporter_form(csrf_of(page), tweet=long_post))
    counter = await client.post(
        f"/api/campaigns/{OPEN_CAMPAIGN}/tweet-length",
        json={"text": long_post, "name": "Ana Lima", "targets": ["cui-tiankai"]},
    )
    weighed = counter.json()["weighted_length"]
    assert weighed > 374
    said = html.unescape(refused.text)
    assert f"Your post is {weighed:,} characters once the officials' handles" in said
    assert f"Shorten it by {weighed - 280:,}" in said
