"""A campaign that reviews supporter-written letters: a sample letter goes straight out;
an edited one waits, unsent (a drained worker does not wait for it), until an operator
approves it (then it is sent) or rejects it (the supporter is told, in plain words)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest

from dispatcher.models import DeliveryStatus
from dispatcher.sandbox import Sandbox
from dispatcher.service.validation import AppealRequest
from dispatcher.web.deps import WebContext
from tests.conftest import OPEN_CAMPAIGN, submitted
from tests.web.conftest import (
    OPERATOR_TOKEN,
    context_of,
    running_app,
    status_path,
    web_settings,
)
from tests.web.test_operator_tools import csrf_of, send_all, sign_in
from tests.web.test_pages import stored_appeal_ids

BEARER = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def reviewing(campaigns_dir: Path) -> Path:
    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("goal = 1000\n", "goal = 1000\nreview_own_letters = true\n", 1))
    return campaigns_dir


async def send(context: WebContext, name: str, message: str | None) -> str:
    request = AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name=name,
        supporter_email=f"{name.split()[0].lower()}@example.org",
        message=message,
        channels=["email"],
    )
    return (await submitted(context.service, request)).appeal_id


def words_of(page: httpx.Response) -> str:
    """The status table's words, as read (tags and attributes left out)."""
    table = page.text[page.text.index("<tbody>") : page.text.index("</tbody>")]
    return html.unescape(re.sub(r"<[^>]+>", " ", table))


async def statuses(context: WebContext, appeal_id: str) -> set[DeliveryStatus]:
    return {e.status for e in await context.service.store.list_deliveries(appeal_id=appeal_id)}


async def test_own_letters_wait_for_an_operator_who_approves_or_rejects_them(
    tmp_path: Path, reviewing: Path
) -> None:
    async with (
        running_app(web_settings(tmp_path, reviewing)) as (app, client),
        Sandbox(tmp_path / "box", channels=["email"]) as box,
    ):
        context = context_of(app)
        sample = await send(context, "Sam Sample", None)
        own = await send(context, "Ana Lima", "Please free Ilham Tohti and everyone held.")
        other = await send(context, "Bo Chen", "Free them all <now>.")
        await send_all(context, box, reviewing)  # drains: it does not wait for the review
        assert await statuses(context, sample) == {DeliveryStatus.DELIVERED}
        assert await statuses(context, own) == {DeliveryStatus.HELD}
        waiting = words_of(await client.get(status_path(client, own)))
        assert "waiting for the campaign's staff to read your letter" in waiting, waiting
        assert len(box.emails) == 2

        listed = (await client.get("/api/review", headers=BEARER)).json()["letters"]
        assert [letter["appeal_id"] for letter in listed] == [own, other]
        assert listed[0]["deliveries"] == ["xi-jinping:email", "cui-tiankai:email"]
        await sign_in(client, OPERATOR_TOKEN)
        dashboard = await client.get("/operator")
        assert "2 letters are waiting for your review." in dashboard.text
        page = await client.get("/operator/review")
        # The letter is shown as a word diff against the sample: read without what it took out.
        shown = re.sub(r"</?ins>", "", re.sub(r"<del>[^<]*</del>", "", page.text))
        assert "Please free Ilham Tohti and everyone held." in shown
        assert "Free them all &lt;now&gt;." in shown  # shown as text, never as markup
        approved = await client.post(
            f"/operator/review/{own}/approve", data={"csrf": csrf_of(page)}
        )
        assert approved.headers["location"] == "/operator/review?done=approve&n=2"
        told = await client.get(approved.headers["location"])
        assert "The letter is approved: its 2 messages are being sent." in told.text
        rejected = await client.post(
            f"/api/appeals/{other}/reject", headers=BEARER, json={"note": "not about the case"}
        )
        again = await client.post(f"/api/appeals/{other}/approve", headers=BEARER)
        unknown = await client.post("/api/appeals/nope/approve", headers=BEARER)
        await send_all(context, box, reviewing)
        assert await statuses(context, own) == {DeliveryStatus.DELIVERED}
        assert await statuses(context, other) == {DeliveryStatus.CANCELLED}
        rejected_page = await client.get(status_path(client, other))
        audit = await client.get("/operator")
    assert rejected.json() == {"appeal_id": other, "decision": "rejected", "deliveries": 2}
    assert again.status_code == 409 and "no letter waiting for review" in again.text
    assert unknown.status_code == 404
    bodies = [m.get_content() for m in box.emails]
    assert sum("Please free Ilham Tohti" in b for b in bodies) == 2
    assert not any("Free them all" in b for b in bodies)
    assert "did not approve your letter. It will not be sent." in rejected_page.text.replace(
        "&#39;", "'"
    )
    assert re.search(
        r"rejected the letter of appeal \S+ \(2 deliveries\): not about the case", audit.text
    )
    assert re.search(r"approved the letter of appeal \S+ \(2 deliveries\)", audit.text)


async def test_without_the_setting_nothing_is_held(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    page = await client.get(f"/c/{OPEN_CAMPAIGN}")
    form = {"csrf": csrf_of(page), "name": "Ana Lima", "email": "ana@example.org",
            "language": "en", "message": "My own words.", "tweet": "",
            "pick": ["xi-jinping:email"]}  # fmt: skip
    await client.post(f"/c/{OPEN_CAMPAIGN}", data=form)
    [appeal_id] = await stored_appeal_ids(client)
    status = words_of(await client.get(status_path(client, appeal_id)))
    assert "waiting to be sent" in status and "read your letter" not in status


async def test_a_supporter_whose_letter_was_rejected_can_send_the_campaigns_letter(
    tmp_path: Path, reviewing: Path
) -> None:
    async with (
        running_app(web_settings(tmp_path, reviewing)) as (app, client),
        Sandbox(tmp_path / "box", channels=["email"]) as box,
    ):
        context = context_of(app)
        own = await send(context, "Bo Chen", "Buy cheap watches.")
        rejected = await client.post(
            f"/api/appeals/{own}/reject", headers=BEARER, json={"note": "spam"}
        )
        assert rejected.status_code == 200, rejected.text
        request = AppealRequest(
            campaign_id=OPEN_CAMPAIGN, supporter_name="Bo Chen",
            supporter_email="bo@example.org", channels=["email"],
        )  # fmt: skip
        again = await submitted(context.service, request)
        await send_all(context, box, reviewing)
        assert await statuses(context, again.appeal_id) == {DeliveryStatus.DELIVERED}
        assert await statuses(context, own) == {DeliveryStatus.CANCELLED}
        repeat = await submitted(context.service, request)  # counted once, as ever
    assert not again.already_counted and len(again.created) == 2
    assert repeat.already_counted
    letters = [m for m in box.emails if "@example.org" not in str(m["To"])]
    assert len(letters) == 2 and not any("watches" in m.get_content() for m in letters)


async def test_reject_needs_a_reason_and_the_queue_shows_what_changed(
    tmp_path: Path, reviewing: Path
) -> None:
    async with running_app(web_settings(tmp_path, reviewing)) as (app, client):
        context = context_of(app)
        sample = context.service.catalog.get(OPEN_CAMPAIGN).letter["en"].body  # type: ignore[union-attr]
        own = await send(context, "Ana Lima", sample.replace("I am", "Today I am", 1) + " Thanks.")
        bare = await client.post(f"/api/appeals/{own}/reject", headers=BEARER, json={"note": " "})
        await sign_in(client, OPERATOR_TOKEN)
        page = await client.get("/operator/review")
        empty = await client.post(
            f"/operator/review/{own}/reject", data={"csrf": csrf_of(page), "note": ""}
        )
        told = await client.get(empty.headers["location"])
        still = await statuses(context, own)
    assert bare.status_code == 422
    assert bare.json()["error"]["field"] == "note"
    assert "a letter is rejected only with the reason why" in bare.json()["error"]["message"]
    assert still == {DeliveryStatus.HELD}  # nothing rejected without a reason
    assert "Say why the letter is rejected" in told.text.replace("&#39;", "'")
    assert 'aria-invalid="true"' in told.text
    assert "<ins>Today </ins>I am" in page.text and "<ins> Thanks.</ins>" in page.text
    assert "required" in page.text.split(f'id="note-{own}"')[1].split(">")[0]
