"""The worker end to end: store → adapters → real sandbox servers → recorded outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from dispatcher.models import (
    Channel,
    DeliveryStatus,
    NewAppeal,
    NewDelivery,
    Settlement,
    utcnow,
)
from dispatcher.render.tweet import compose_tweet, post_reference
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.service.reporting import campaign_report
from dispatcher.service.status import reason
from dispatcher.settings import EmailSettings
from dispatcher.store import Store
from tests.conftest import OPEN_CAMPAIGN, settings_for, submitted
from tests.integration.conftest import MakeWorker, appeal
from tests.waiting import eventually


async def test_one_step_appeal_reaches_every_target_on_every_channel(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox:
        await submitted(service, appeal())
        await submitted(
            service,
            appeal(
                supporter_name="李华",
                supporter_email="li@example.net",
                message="请立即释放所有被任意拘押的人。",
                language="zh",
            ),
        )
        await make_worker(sandbox).run(drain=True)
        received = sandbox.delivered_counts()
        fax_tags = sorted(f.tags["delivery_id"] for f in sandbox.faxes)
    report = await campaign_report(service, OPEN_CAMPAIGN)
    assert received == {"email": 4, "fax": 4, "twitter": 2}
    rehearsal = report.rehearsal  # every channel went to the sandbox: never an action
    assert {c: v.delivered for c, v in rehearsal.channels.items()} == received
    assert (report.actions, rehearsal.delivered, rehearsal.appeals, rehearsal.supporters) == (
        0,
        10,
        2,
        2,
    )
    assert rehearsal.targets["cui-tiankai"]["twitter"].delivered == 2
    fax_ids = sorted(str(e.id) for e in await store.list_deliveries() if e.channel is Channel.FAX)
    assert fax_tags == fax_ids


async def test_transient_faults_are_retried_to_success_across_attempts(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    # Two fast tries per attempt: three 451s need a second, durable attempt.
    faults = Faults(fail_first=3)
    async with Sandbox(tmp_path / "box", email_faults=faults, channels=["email"]) as sandbox:
        await submitted(service, appeal(targets=["xi-jinping"], channels=["email"]))
        await make_worker(sandbox).run(drain=True)
        assert len(sandbox.emails) == 1
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.DELIVERED and entry.attempts == 2
    attempts = await store.list_attempts(entry.id)
    assert [a.outcome for a in attempts] == ["transient", "delivered"]
    assert attempts[0].error is not None and attempts[0].error.code == "451"


async def test_permanent_refusal_is_not_retried_and_keeps_its_reason(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    faults = Faults(refuse=frozenset({"english@mail.gov.cn"}))
    async with Sandbox(tmp_path / "box", email_faults=faults, channels=["email"]) as sandbox:
        await submitted(service, appeal(channels=["email"]))
        await make_worker(sandbox).run(drain=True)
        assert [str(m["To"]) for m in sandbox.emails] == [
            "Cui Tiankai <chinaembpress_us@mfa.gov.cn>"
        ]
    failed = await store.list_deliveries(status=DeliveryStatus.FAILED)
    assert [(e.target_id, e.attempts) for e in failed] == [("xi-jinping", 1)]
    error = failed[0].last_error
    assert error is not None and error.error_class == "PermanentError" and error.code == "550"
    assert "mailbox unavailable" in error.message


async def test_attempt_cap_ends_retrying(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    faults = Faults(fail_first=1000)
    async with Sandbox(tmp_path / "box", email_faults=faults, channels=["email"]) as sandbox:
        await submitted(service, appeal(targets=["xi-jinping"], channels=["email"]))
        await make_worker(sandbox, max_attempts=3).run(drain=True)
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.FAILED and entry.attempts == 3
    assert entry.last_error is not None
    assert entry.last_error.message.startswith("gave up after 3 attempts")


async def test_busy_fax_line_is_retried_and_bad_number_fails(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    faults = Faults(busy_first=1, refuse=frozenset({"+861062381025"}))
    async with Sandbox(
        tmp_path / "box", fax_faults=faults, fax_transmit_seconds=0.05, channels=["fax"]
    ) as sandbox:
        await submitted(service, appeal(channels=["fax"]))
        await make_worker(sandbox).run(drain=True)
        assert sandbox.delivered_counts()["fax"] == 1
    by_target = {e.target_id: e for e in await store.list_deliveries()}
    cui, xi = by_target["cui-tiankai"], by_target["xi-jinping"]
    assert xi.status is DeliveryStatus.FAILED and xi.attempts == 1
    assert xi.last_error is not None and "not operational" in xi.last_error.message
    assert cui.status is DeliveryStatus.DELIVERED and cui.attempts == 2
    assert [a.outcome for a in await store.list_attempts(cui.id)] == ["transient", "delivered"]


async def test_rate_limit_and_server_error_on_x_are_retried(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    faults = Faults(rate_limit_first=1, fail_first=2, rate_limit_reset_seconds=0)
    async with Sandbox(tmp_path / "box", x_faults=faults, channels=["twitter"]) as sandbox:
        await submitted(service, appeal(channels=["twitter"]))
        await make_worker(sandbox).run(drain=True)
        assert len(sandbox.tweets) == 1
        assert re.search(r"— Ana Lima \(ref [a-z2-7]{5}\)$", sandbox.tweets[0]["text"])
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.DELIVERED and entry.attempts == 3
    outcomes = [a.outcome for a in await store.list_attempts(entry.id)]
    assert outcomes == ["rate_limited", "transient", "delivered"]


async def test_a_rate_limit_pauses_the_channel_for_every_worker_without_using_an_attempt(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    # One post gets a 429 asking to wait 2 s; the channel pauses, the others wait too.
    faults = Faults(rate_limit_first=1, rate_limit_reset_seconds=2)
    async with Sandbox(tmp_path / "box", x_faults=faults, channels=["twitter"]) as sandbox:
        for n in range(3):
            await submitted(
                service,
                appeal(
                    channels=["twitter"],
                    supporter_name=f"Supporter {n}",
                    supporter_email=f"s{n}@example.org",
                ),
            )
        # Cap of one attempt: had the 429 counted, that delivery would have failed.
        first, second = make_worker(sandbox, max_attempts=1), make_worker(sandbox, max_attempts=1)
        await asyncio.gather(first.run(drain=True), second.run(drain=True))
        assert len(sandbox.tweets) == 3
    entries = await store.list_deliveries()
    assert {e.status for e in entries} == {DeliveryStatus.DELIVERED}
    tries = {e.id: await store.list_attempts(e.id) for e in entries}
    met_429 = [e for e in entries if any(a.error and a.error.code == "429" for a in tries[e.id])]
    assert len(met_429) == 1  # X refused one post
    attempts = tries[met_429[0].id]
    assert [a.outcome for a in attempts] == ["rate_limited", "delivered"]
    # A post the other worker claimed at the same moment may meet the limit X's answer
    # recorded: held back before it was sent (not posted), without using an attempt.
    for e in entries:
        if e is not met_429[0] and e.attempts == 2:
            held = tries[e.id][0]
            assert held.outcome == "rate_limited" and held.error is not None
            assert held.error.message.startswith("not posted: X's 15-minute limit")
    # Nothing was claimed during the pause (X gave a reset 1-2 s ahead). Sends already in
    # flight when the 429 came, or claimed while it was being recorded, are not held back.
    limited_at = attempts[0].finished_at
    assert limited_at is not None
    settled = limited_at + dt.timedelta(seconds=0.3)
    later = [
        a.started_at
        for e in entries
        for a in await store.list_attempts(e.id)
        if a.started_at > settled
    ]
    assert later and all(t >= limited_at + dt.timedelta(seconds=0.9) for t in later)


async def test_lost_response_then_duplicate_content_counts_once_as_delivered(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    async with Sandbox(
        tmp_path / "box", x_faults=Faults(drop_first=1), channels=["twitter"]
    ) as sandbox:
        await submitted(service, appeal(channels=["twitter"]))
        await make_worker(sandbox).run(drain=True)
        assert len(sandbox.tweets) == 1
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.DELIVERED


async def test_a_crashed_workers_delivery_is_sent_by_the_next_worker(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        # A worker claims and dies: its lease ran out an hour ago.
        an_hour_ago = utcnow() - dt.timedelta(hours=1)
        request = appeal(targets=["xi-jinping"], channels=["email"])
        await submitted(service, request, now=an_hour_ago)
        await store.claim_due_deliveries("dead", limit=10, lease_seconds=60, now=an_hour_ago)
        await make_worker(sandbox).run(drain=True)
        assert len(sandbox.emails) == 1
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.DELIVERED and entry.attempts == 2
    assert [a.outcome for a in await store.list_attempts(entry.id)] == ["unknown", "delivered"]
    # SMTP cannot be asked whether the first try arrived: the resend says so.
    assert entry.settlement is Settlement.POSSIBLE_DUPLICATE


async def holder_claimed(store: Store, worker: str) -> bool:
    """Whether ``worker`` has claimed the only delivery (its attempt is open)."""
    [entry] = await store.list_deliveries()
    attempts = await store.list_attempts(entry.id)
    return entry.status is DeliveryStatus.SENDING and [a.worker for a in attempts] == [worker]


async def test_the_heartbeat_keeps_a_slow_send_from_being_rescued(
    store: Store, service: Service, campaigns_dir: Path, tmp_path: Path
) -> None:
    """A send that outlasts the lease many times over is renewed, so a second worker that
    keeps asking for due work never takes it: one email, one attempt."""
    # The send outlasts three leases. A lease of over a second leaves the renewals, due
    # every 0.4 s, room for the stalls of a loaded machine (half a second failed it).
    slow = Faults(delay_seconds=4.0)
    async with Sandbox(tmp_path / "box", email_faults=slow, channels=["email"]) as sandbox:
        settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
        short = settings.worker.model_copy(update={"lease_seconds": 1.2, "idle_seconds": 0.05})
        settings = settings.model_copy(update={"worker": short})
        await submitted(service, appeal(targets=["xi-jinping"], channels=["email"]))
        holder, rescuer = build_worker(settings, service), build_worker(settings, service)
        try:
            held = asyncio.create_task(holder.run(drain=True))
            await eventually(lambda: holder_claimed(store, holder.name), what="the holder's claim")
            await rescuer.run(drain=True)  # returns once nothing is pending any more
            await held
        finally:
            await close_adapters(holder)
            await close_adapters(rescuer)
        assert len(sandbox.emails) == 1
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.DELIVERED and entry.attempts == 1
    assert rescuer.stats.handled == 0 and holder.stats.handled == 1


async def test_a_worker_unsure_of_its_lease_hands_the_delivery_back_unsent(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    """Another connection holds the write lock for most of the lease while the worker
    claims: by the time its claim returns, it cannot be sure another worker will not take
    the delivery over, so it does not send; it records "not sent" (not counted towards
    the cap) and sends it on its next claim. One email, nothing marked as a duplicate."""
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        await submitted(service, appeal(targets=["xi-jinping"], channels=["email"]))
        worker = make_worker(sandbox)
        worker.settings = worker.settings.model_copy(update={"lease_seconds": 1.5})
        blocker = await Store.open(
            str(store.engine.url.render_as_string(hide_password=False)), migrate_schema=False
        )
        locked = asyncio.Event()

        async def hold_the_lock() -> None:
            async with blocker._writing() as conn:
                if blocker.dialect == "postgresql":
                    await conn.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))
                else:
                    await conn.execute(text("DELETE FROM deliveries WHERE id < 0"))
                locked.set()
                # Real time: the worker measures its lease on its own clock, which a test
                # cannot move (most of the 1.5 s lease passes while its claim waits).
                await asyncio.sleep(1.2)

        try:
            holding = asyncio.create_task(hold_the_lock())
            await locked.wait()
            await worker.run(drain=True)
            await holding
        finally:
            await blocker.close()
        assert len(sandbox.emails) == 1
    [entry] = await store.list_deliveries()
    attempts = await store.list_attempts(entry.id)
    assert [a.outcome for a in attempts] == ["not_sent", "delivered"]
    assert attempts[0].error is not None and attempts[0].error.error_class == "LeaseLost"
    assert entry.status is DeliveryStatus.DELIVERED and entry.settlement is None


async def test_retry_that_would_land_after_the_deadline_expires(
    store: Store, tmp_path: Path, make_worker: MakeWorker, service: Service
) -> None:
    expires_at = utcnow() + dt.timedelta(seconds=30)
    await store.create_appeal(
        NewAppeal("c1", "Ana", "ana@example.org", None, "en", "S", "B", False, None, expires_at),
        [NewDelivery("t1", "T", "Dear T", Channel.EMAIL, "t@example.gov")],
    )
    async with Sandbox(
        tmp_path / "box", email_faults=Faults(fail_first=10), channels=["email"]
    ) as sandbox:
        await make_worker(sandbox, base_seconds=120, max_seconds=120).run(drain=True)
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.EXPIRED
    assert (
        entry.last_error is not None
        and "deadline passes before a retry" in entry.last_error.message
    )


async def test_two_workers_share_the_queue_without_double_sending(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05) as sandbox:
        for n in range(4):
            await submitted(
                service,
                appeal(supporter_email=f"s{n}@example.org", supporter_name=f"Supporter {n}"),
            )
        first, second = make_worker(sandbox), make_worker(sandbox)
        await asyncio.gather(first.run(drain=True), second.run(drain=True))
        received = sandbox.delivered_counts()
    assert received == {"email": 8, "fax": 8, "twitter": 4}
    statuses = {e.status for e in await store.list_deliveries()}
    assert statuses == {DeliveryStatus.DELIVERED}


async def test_stop_event_ends_the_run_and_leaves_work_queued(
    store: Store,
    tmp_path: Path,
    make_worker: MakeWorker,
    service: Service,
) -> None:
    async with Sandbox(tmp_path / "box") as sandbox:
        await submitted(service, appeal())
        stop = asyncio.Event()
        stop.set()
        stats = await make_worker(sandbox).run(stop=stop)
    assert stats.handled == 0
    assert await store.pending_count() == 5


async def test_forced_stop_marks_cut_off_sends_unknown_and_releases_unstarted(
    store: Store, service: Service, campaigns_dir: Path, tmp_path: Path
) -> None:
    # A real TCP peer that accepts SMTP connections and never answers: sends hang there.
    connected = asyncio.Event()

    async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the client goes away
        writer.close()

    server = await asyncio.start_server(tarpit, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Sandbox(tmp_path / "box", channels=["fax"]) as sandbox:
            settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
            settings = settings.model_copy(
                update={
                    "email": EmailSettings(host="127.0.0.1", port=port, start_tls=False),
                    "worker": settings.worker.model_copy(update={"email_concurrency": 1}),
                }
            )
            await submitted(service, appeal(channels=["email"]))
            worker = build_worker(settings, service)
            run = asyncio.create_task(worker.run())
            await connected.wait()
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            await close_adapters(worker)
    finally:
        server.close()
        await server.wait_closed()
    entries = {e.target_id: e for e in await store.list_deliveries()}
    cut_off, untouched = entries["xi-jinping"], entries["cui-tiankai"]
    assert cut_off.status is DeliveryStatus.QUEUED and cut_off.attempts == 1
    assert [a.outcome for a in await store.list_attempts(cut_off.id)] == ["unknown"]
    assert untouched.status is DeliveryStatus.QUEUED and untouched.attempts == 0
    assert await store.list_attempts(untouched.id) == []


async def test_two_supporters_of_the_same_name_and_words_both_get_posted(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    """Every post goes out from the organisation's one account, and X refuses a repeat: two
    Maria Garcias with the campaign's post must not collide (each post carries its appeal's
    reference)."""
    async with Sandbox(tmp_path / "box", channels=["twitter"]) as sandbox:
        for email in ("maria@example.org", "maria.g@example.net"):
            request = appeal(supporter_name="Maria Garcia", supporter_email=email)
            await submitted(service, dataclasses.replace(request, channels=["twitter"]))
        await make_worker(sandbox).run(drain=True)
        texts = [t["text"] for t in sandbox.tweets]
    assert len(texts) == 2 and texts[0] != texts[1]
    assert {e.status for e in await store.list_deliveries()} == {DeliveryStatus.DELIVERED}


async def test_a_first_post_refused_as_a_duplicate_goes_out_again_with_another_reference(
    store: Store, tmp_path: Path, make_worker: MakeWorker, service: Service
) -> None:
    """Someone already posted these exact words from the account (nothing of ours went
    out): the supporter is told it will be tried again, and the next attempt posts the
    same words with another reference, of the same length. A second refusal ends it."""
    for taken_before in (1, 2):
        async with Sandbox(tmp_path / f"box{taken_before}", channels=["twitter"]) as sandbox:
            receipt = await submitted(
                service,
                appeal(channels=["twitter"], supporter_email=f"a{taken_before}@example.org"),
            )
            pending = (await store.list_deliveries(appeal_id=receipt.appeal_id))[0]
            stored = await store.receipt_appeal(receipt.appeal_id)
            assert stored is not None and stored.tweet is not None
            posts = [
                compose_tweet(
                    pending.address, stored.tweet, "Ana Lima", post_reference(receipt.appeal_id, n)
                )
                for n in range(2)
            ]
            assert len(posts[1]) == len(posts[0]) and posts[1] != posts[0]
            oauth = 'OAuth oauth_consumer_key="k", oauth_signature="s"'
            async with httpx.AsyncClient() as http:
                for text in posts[:taken_before]:
                    taken = await http.post(
                        f"{sandbox.x_base_url}/2/tweets",
                        json={"text": text},
                        headers={"Authorization": oauth},
                    )
                    assert taken.status_code == 201
            await make_worker(sandbox).run(drain=True)
            ours = [t["text"] for t in sandbox.tweets][taken_before:]
        entry = (await store.list_deliveries(appeal_id=receipt.appeal_id))[0]
        outcomes = [a.outcome for a in await store.list_attempts(entry.id)]
        if taken_before == 1:
            assert entry.status is DeliveryStatus.DELIVERED and ours == [posts[1]]
            assert outcomes == ["permanent", "delivered"]
        else:
            assert entry.status is DeliveryStatus.FAILED and ours == []
            assert outcomes == ["permanent", "permanent"]
            assert reason(entry) == (
                "X refused the post because the same words were already posted. "
                "We will not try again."
            )
