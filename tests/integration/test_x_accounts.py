"""Posts on X as X allows them: from the supporter's own account (OAuth 2.0 with PKCE,
on the sandbox X's consent page and token endpoint), handed off when the API cannot post
them, and every request and answer checked against X's published description."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from dispatcher.channels.registry import x_oauth_client
from dispatcher.channels.x_oauth import XOAuthClient
from dispatcher.models import AppealReceipt, DeliveryStatus, utcnow
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.service.receipts import compose
from dispatcher.service.reporting import campaign_report
from dispatcher.service.x_accounts import (
    finish_connection,
    open_hand_off,
    start_connection,
    x_app_capped,
)
from dispatcher.store.receipts import RECEIPT, REPEAT, ReceiptJob
from dispatcher.store.schema import receipts
from tests.conftest import OPEN_CAMPAIGN, accepted, settings_for, submitted, write_open_campaign
from tests.contract.x_openapi import validate_x_request, validate_x_response
from tests.integration.conftest import MakeWorker, appeal
from tests.waiting import eventually


@pytest.fixture
def own_accounts(campaigns_dir: Path) -> Path:
    """The open campaign in own_account mode (first among a test's fixtures: the service
    and its worker load the campaigns after it)."""
    write_open_campaign(campaigns_dir, x_mode="own_account")
    return campaigns_dir


async def x_box(tmp_path: Path, **faults: object) -> Sandbox:
    return Sandbox(tmp_path / "sandbox", channels=("twitter",), x_faults=Faults(**faults))  # type: ignore[arg-type]


# The X apps with_x made in this test: their pooled HTTP clients are closed after it, as
# the composition root closes its own.
_APPS: list[XOAuthClient] = []


@pytest.fixture(autouse=True)
async def _close_x_apps() -> AsyncIterator[None]:
    yield
    while _APPS:
        await _APPS.pop().aclose()


def with_x(service: Service, box: Sandbox, campaigns_dir: Path) -> Service:
    """The service with the sandbox X's OAuth 2.0 app, as the composition root builds it."""
    settings = settings_for(box, database_url="unused", campaigns_dir=campaigns_dir)
    catalog = type(service.catalog).load(campaigns_dir)
    app = x_oauth_client(settings, True)
    assert app is not None
    _APPS.append(app)
    return dataclasses.replace(service, catalog=catalog, x_oauth=app)


async def connect(service: Service, username: str, *, allow: bool = True) -> tuple[str, str]:
    """The supporter connects an account on the sandbox X's consent page, as a browser
    would post it. Returns (connection id, where X sent them back)."""
    connection_id, consent_page = await start_connection(service, OPEN_CAMPAIGN)
    query = dict(parse_qsl(urlsplit(consent_page).query))
    form = {**query, "username": username, "decision": "allow" if allow else "deny"}
    async with httpx.AsyncClient() as http:
        page = await http.get(consent_page)
        assert page.status_code == 200 and "Authorize app" in page.text
        answer = await http.post(consent_page.partition("?")[0], data=form)
    back = answer.headers["location"]
    params = dict(parse_qsl(urlsplit(back).query))
    answered = await finish_connection(
        service, state=params["state"], code=params.get("code"), error=params.get("error")
    )
    assert (answered.connection_id is not None) is allow
    return connection_id, back


async def sent_from_own_account(
    service: Service, box: Sandbox, campaigns_dir: Path, username: str
) -> tuple[Service, AppealReceipt]:
    """An appeal to the ambassador on X, sent after connecting ``username``'s account."""
    service = with_x(service, box, campaigns_dir)
    connection_id, _back = await connect(service, username)
    receipt = await submitted(service, appeal(channels=["twitter"], x_connection=connection_id))
    return service, receipt


def check_exchanges(box: Sandbox) -> int:
    """Every request to the sandbox X, and its answer, against X's description."""
    assert box.x_api is not None
    for seen in box.x_api.exchanges:
        validate_x_request(seen.method, seen.url, seen.headers, seen.body)
        validate_x_response(
            seen.method, seen.url, seen.status, seen.response_headers, seen.response_body
        )
    return len(box.x_api.exchanges)


async def drained(make_worker: MakeWorker, box: Sandbox) -> None:
    worker = make_worker(box)
    await worker.run(drain=True)


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with await x_box(tmp_path) as sandbox:
        yield sandbox


async def test_a_post_goes_out_from_the_supporters_own_account(
    own_accounts: Path, box: Sandbox, service: Service, make_worker: MakeWorker
) -> None:
    service = with_x(service, box, own_accounts)
    connection_id, _back = await connect(service, "ana_lima")
    receipt = await submitted(service, appeal(channels=["twitter"], x_connection=connection_id))
    assert [d.status for d in receipt.created] == [DeliveryStatus.QUEUED] * len(receipt.created)
    await drained(make_worker, box)

    posts = box.tweets
    assert len(posts) == len(receipt.created) > 0
    assert {p["author"] for p in posts} == {"ana_lima"}
    assert all("Ana Lima" not in p["text"] and "(ref " not in p["text"] for p in posts)
    entries = await service.store.list_deliveries(appeal_id=receipt.appeal_id)
    assert {e.status for e in entries} == {DeliveryStatus.DELIVERED}
    # Settled: the tokens go at the next sweep (a claim runs it, once a second at most).
    later = utcnow() + dt.timedelta(seconds=2)
    await service.store.claim_due_deliveries("sweeper", limit=1, lease_seconds=1, now=later)
    assert await service.store.x_sealed(receipt.appeal_id) is None
    report = await campaign_report(service, OPEN_CAMPAIGN)
    assert report.rehearsal.channels["twitter"].delivered == len(posts)
    assert report.unverified.handed_off == 0
    # The token exchange, the user look-up and each post, as X describes them.
    assert check_exchanges(box) == 2 + len(posts)


async def test_declined_consent_hands_the_post_to_the_supporter(
    own_accounts: Path, box: Sandbox, service: Service, make_worker: MakeWorker
) -> None:
    service = with_x(service, box, own_accounts)
    _connection, back = await connect(service, "ana_lima", allow=False)
    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]
    taken = await accepted(service, appeal(channels=["twitter"]))
    assert taken.hand_offs, "the supporter gets a link to each prepared post"
    entries = await service.store.list_deliveries(appeal_id=taken.appeal_id)
    assert {e.status for e in entries} == {DeliveryStatus.HANDED_OFF}
    await drained(make_worker, box)
    assert box.tweets == []  # nothing posted for them

    target, link = taken.hand_offs[0]
    params = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    intent = await open_hand_off(
        service,
        appeal_id=params["appeal"],
        target_id=params["target"],
        text=params["text"],
        token=params["token"],
    )
    assert intent.startswith("https://x.com/intent/post?text=")
    assert parse_qs(urlsplit(intent).query)["text"] == [params["text"]]
    report = await campaign_report(service, OPEN_CAMPAIGN)
    assert report.actions == 0 and report.rehearsal.channels["twitter"].delivered == 0
    assert report.unverified.handed_off == len(entries)
    assert report.unverified.opened == 1
    assert report.unverified.targets[target] == 1
    # A link with another text is not ours.
    with pytest.raises(Exception, match="not one we made"):
        await open_hand_off(
            service,
            appeal_id=params["appeal"],
            target_id=target,
            text="other",
            token=params["token"],
        )


async def test_an_expired_token_is_refreshed_before_the_post(
    own_accounts: Path, tmp_path: Path, service: Service, make_worker: MakeWorker
) -> None:
    async with await x_box(tmp_path, x_token_seconds=30) as box:
        service, receipt = await sent_from_own_account(service, box, own_accounts, "li_hua")
        await drained(make_worker, box)
        assert {p["author"] for p in box.tweets} == {"li_hua"}
        assert len(box.tweets) == len(receipt.created)
        assert box.x_api is not None
        grants = [e.body for e in box.x_api.exchanges if e.url.endswith("/2/oauth2/token")]
        assert any(b"grant_type=refresh_token" in body for body in grants)
        check_exchanges(box)


async def test_a_refused_refresh_hands_the_post_off(
    own_accounts: Path, tmp_path: Path, service: Service, make_worker: MakeWorker
) -> None:
    async with await x_box(tmp_path, x_token_seconds=30) as box:
        service, receipt = await sent_from_own_account(service, box, own_accounts, "li_hua")
        assert box.x_api is not None
        box.x_api.oauth.refresh.clear()  # the supporter withdrew the app's access on X
        await drained(make_worker, box)
        assert box.tweets == []
        entries = await service.store.list_deliveries(appeal_id=receipt.appeal_id)
        assert {e.status for e in entries} == {DeliveryStatus.HANDED_OFF}
        assert all(e.last_error and "renew" in e.last_error.message for e in entries)


@pytest.mark.parametrize(
    ("fault", "code"),
    [("not_enrolled_first", "client-not-enrolled"), ("suspended_first", "403")],
)
async def test_an_app_x_does_not_let_post_hands_off(
    tmp_path: Path, service: Service, make_worker: MakeWorker, fault: str, code: str
) -> None:
    async with await x_box(tmp_path, **{fault: 10}) as box:
        receipt = await submitted(service, appeal(channels=["twitter"]))
        await drained(make_worker, box)
        entries = await service.store.list_deliveries(appeal_id=receipt.appeal_id)
        assert {e.status for e in entries} == {DeliveryStatus.HANDED_OFF}
        assert all(e.last_error and e.last_error.code == code for e in entries)
        assert all(e.last_error and e.last_error.error_class == "HandOff" for e in entries)
        report = await campaign_report(service, OPEN_CAMPAIGN)
        assert report.unverified.handed_off == len(entries) and report.actions == 0
        check_exchanges(box)


async def test_the_app_cap_read_from_xs_headers_stops_posting_before_a_429(
    tmp_path: Path, service: Service, campaigns_dir: Path
) -> None:
    async with await x_box(tmp_path, x_app_limit=1) as box:
        first = await submitted(service, appeal(channels=["twitter"]))
        second = await submitted(
            service, appeal(channels=["twitter"], supporter_email="bo@example.org")
        )
        # One post at a time: X's answer to the first says the app's cap is used up (the
        # first post learns the limits: there is nothing to read before it).
        settings = settings_for(box, database_url="unused", campaigns_dir=campaigns_dir)
        settings.worker.twitter_concurrency = 1
        worker, stop = build_worker(settings, service), asyncio.Event()
        try:
            task = asyncio.create_task(worker.run(stop=stop))

            async def second_held_back() -> bool:
                [waiting] = await service.store.list_deliveries(appeal_id=second.appeal_id)
                return waiting.status is DeliveryStatus.QUEUED and waiting.attempts == 1

            await eventually(lambda: box.tweets, what="the first post")
            await eventually(second_held_back, what="the second post claimed and held back")
            stop.set()
            await task
        finally:
            await close_adapters(worker)
        assert len(box.tweets) == 1
        assert box.x_api is not None
        # The second post waits for the reset instead of running into X's 429.
        assert [e.status for e in box.x_api.exchanges] == [201]
        cap = await x_app_capped(service)
        assert cap is not None and cap[0] > utcnow() + dt.timedelta(hours=23)
        [waiting] = await service.store.list_deliveries(appeal_id=second.appeal_id)
        assert waiting.status is DeliveryStatus.QUEUED and waiting.next_attempt_at >= cap[0]
        assert waiting.attempts == 1 and waiting.last_error is not None
        assert "24-hour cap for the app" in waiting.last_error.message
        # New posts are handed to their supporters while the cap holds.
        third = await accepted(
            service, appeal(channels=["twitter"], supporter_email="cy@example.org")
        )
        assert third.hand_offs
        [handed] = await service.store.list_deliveries(appeal_id=third.appeal_id)
        assert handed.status is DeliveryStatus.HANDED_OFF
        assert handed.last_error and "24-hour cap" in handed.last_error.message
        assert first.created and check_exchanges(box) == 1


async def test_the_sandbox_x_answers_as_xs_description_says_refusals_included(
    tmp_path: Path, service: Service, make_worker: MakeWorker
) -> None:
    faults = {"rate_limit_first": 1, "fail_first": 1, "refuse": frozenset({"ambcuitiankai"})}
    async with await x_box(tmp_path, **faults) as box:
        await submitted(service, appeal(channels=["twitter"]))
        await drained(make_worker, box)
        assert box.x_api is not None
        statuses = [e.status for e in box.x_api.exchanges]
        assert statuses == [429, 503, 403], statuses
        # Every request, and every answer (X's problem+json refusals too), as X describes.
        assert check_exchanges(box) == 3


async def test_the_receipt_gives_a_handed_off_post_only_to_a_confirmed_address(
    own_accounts: Path, box: Sandbox, service: Service
) -> None:
    service = with_x(service, box, own_accounts)
    taken = await accepted(service, appeal(channels=["twitter"]))
    appeal_row = await service.store.receipt_appeal(taken.appeal_id)
    assert appeal_row is not None and not appeal_row.confirmed
    entries = await service.store.list_deliveries(appeal_id=taken.appeal_id)
    job = ReceiptJob(1, taken.appeal_id, RECEIPT, 0, 0)
    sent = compose(service, job, appeal_row, entries, "appeals@example.org", "Appeals")
    text = sent.get_content()
    # Perhaps not its owner's doing: no words of theirs (the link carries the post).
    assert "ready for you to post from your own account" in text and "/x/post?" not in text
    confirmed = dataclasses.replace(appeal_row, confirmed=True)
    text = compose(service, job, confirmed, entries, "appeals@example.org", "Appeals").get_content()
    [link] = re.findall(r"https?://\S+/x/post\?\S+", text)
    assert link.endswith(taken.hand_offs[0][1].split("?", 1)[1])


async def test_an_own_account_post_whose_answer_was_lost_counts_once(
    own_accounts: Path, tmp_path: Path, service: Service, make_worker: MakeWorker
) -> None:
    # X took the post and the connection dropped before the answer: the retry is refused
    # as a duplicate from that account, which settles it as delivered, once.
    async with await x_box(tmp_path, drop_first=1) as box:
        service, receipt = await sent_from_own_account(service, box, own_accounts, "ana_lima")
        await drained(make_worker, box)
        assert len(box.tweets) == 1
        [entry] = await service.store.list_deliveries(appeal_id=receipt.appeal_id)
        assert entry.status is DeliveryStatus.DELIVERED
        assert entry.settlement is not None and entry.settlement.value == "reconciled"
        report = await campaign_report(service, OPEN_CAMPAIGN)
        assert report.rehearsal.channels["twitter"].delivered == 1


async def test_own_account_posts_are_told_apart_by_the_account_not_the_address(
    own_accounts: Path, box: Sandbox, service: Service, make_worker: MakeWorker
) -> None:
    service = with_x(service, box, own_accounts)
    # The address had taken part, its X post included (handed off: no account then).
    earlier = await submitted(service, appeal(channels=["twitter", "email"]))
    assert earlier.created
    # Someone connects their own account and sends with that address again: the post goes
    # out from that account, so whoever connected it learns nothing of the address's past.
    connection_id, _back = await connect(service, "someone_else")
    again = await submitted(service, appeal(channels=["twitter"], x_connection=connection_id))
    assert [d.channel.value for d in again.created] == ["twitter"]
    await drained(make_worker, box)
    assert [t["author"] for t in box.tweets] == ["someone_else"]
    # That account posting to the same official again is the repeat, whatever the address.
    connection_id, _back = await connect(service, "someone_else")
    third = await submitted(
        service,
        appeal(channels=["twitter"], supporter_email="new@example.org", x_connection=connection_id),
    )
    assert third.is_repeat and [d.channel.value for d in third.already_counted] == ["twitter"]
    await drained(make_worker, box)
    assert len(box.tweets) == 1
    # And ana@example.org is not told "you had already taken part" for another address.
    async with service.store.engine.connect() as conn:
        notices = await conn.scalar(select(func.count()).where(receipts.c.kind == REPEAT))
    assert notices == 0
