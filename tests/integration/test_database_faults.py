"""The worker against its database's bad moments, with real faults: every connection killed
(PostgreSQL), the write lock held past the lease, the SQLite file made read-only."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatcher.models import DeliveryStatus
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.store import Store
from dispatcher.worker import Worker, WorkerStopped
from tests.conftest import read_only, submitted, table_renamed
from tests.integration.conftest import MakeWorker, appeal
from tests.waiting import eventually

SLOW = Faults(delay_seconds=0.2)  # an SMTP server that takes its time: sends overlap faults


async def queue_emails(service: Service, appeals: int) -> None:
    """``appeals`` appeals by email only: two emails each (one per official)."""
    for n in range(appeals):
        request = appeal(supporter_name=f"Supporter {n}", supporter_email=f"s{n}@example.org")
        await submitted(service, dataclasses.replace(request, channels=["email"]))


async def sending(store: Store) -> None:
    """Until the worker has claimed a delivery (a send is under way or done)."""

    async def claimed() -> bool:
        return any(e.attempts for e in await store.list_deliveries())

    await eventually(claimed, what="the worker's first claim")


def email_worker(make_worker: MakeWorker, sandbox: Sandbox, lease_seconds: float | None) -> Worker:
    """A worker without pacing (many emails to two inboxes is not what this is about)."""
    worker = make_worker(sandbox)
    if lease_seconds is not None:
        worker.settings = worker.settings.model_copy(update={"lease_seconds": lease_seconds})
    worker.pacing = None
    return worker


async def delivered_count(store: Store) -> int:
    return len(await store.list_deliveries(status=DeliveryStatus.DELIVERED))


async def recorded_more(store: Store, *, than: int) -> None:
    """Until more deliveries are recorded as delivered than ``than``, or all are."""

    async def more() -> bool:
        count = await delivered_count(store)
        return count > than or count == len(await store.list_deliveries())

    await eventually(more, what=f"the worker recording more than {than} sends", within=30)


async def test_the_worker_outlives_its_database_connections_being_killed(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    """PostgreSQL ends every connection of the worker's database three times while it sends:
    it claims and records again once it can, and nothing is lost or sent twice."""
    if store.dialect != "postgresql":
        pytest.skip("kills connections with pg_terminate_backend")
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        for n in range(60):
            request = appeal(
                supporter_name=f"Supporter {n}",
                supporter_email=f"s{n}@example.org",
                channels=["email"],
            )
            await submitted(service, request)
        # A claim that committed as its connection died leaves leases nobody holds: short
        # leases let them run out and be taken again within the test.
        worker = make_worker(sandbox)
        worker.settings = worker.settings.model_copy(update={"lease_seconds": 3.0})
        worker.pacing = None  # 60 emails to each of two inboxes: not what this is about
        run = asyncio.create_task(worker.run(drain=True))
        killer = await Store.open(str(store.engine.url.render_as_string(hide_password=False)))
        delivered = 0  # a first kill once it has recorded a send
        try:
            for _ in range(3):
                await recorded_more(killer, than=delivered)
                delivered = await delivered_count(killer)
                async with killer.engine.begin() as conn:
                    await conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
            await asyncio.wait_for(run, timeout=60)
            # Read on connections of its own (the test's pool holds killed ones too).
            entries = await killer.list_deliveries()
        finally:
            await killer.close()
        received = Counter(str(m["Message-ID"]) for m in sandbox.emails)
    assert len(entries) == 120 and {e.status for e in entries} == {DeliveryStatus.DELIVERED}
    assert len(received) == 120 and set(received.values()) == {1}  # each once


async def test_a_database_locked_past_the_lease_loses_nothing_and_sends_nothing_twice(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    """Another connection holds the write lock for over twice the lease while the worker
    sends: nothing can be recorded or renewed meanwhile. Afterwards the worker carries on
    by itself; it never takes back what it still holds, so each email goes once."""
    async with Sandbox(tmp_path / "box", email_faults=SLOW, channels=["email"]) as sandbox:
        await queue_emails(service, appeals=15)
        worker = email_worker(make_worker, sandbox, lease_seconds=1.5)
        blocker = await Store.open(
            str(store.engine.url.render_as_string(hide_password=False)), migrate_schema=False
        )
        try:
            run = asyncio.create_task(worker.run(drain=True))
            await sending(store)
            async with blocker._writing() as conn:
                if blocker.dialect == "postgresql":
                    await conn.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))
                else:
                    await conn.execute(text("DELETE FROM deliveries WHERE id < 0"))
                # Real time: leases run out on the clocks of the worker and the database.
                await asyncio.sleep(4)
            await asyncio.wait_for(run, timeout=60)
        finally:
            await blocker.close()
        received = Counter(str(m["Message-ID"]) for m in sandbox.emails)
    entries = await store.list_deliveries()
    assert len(entries) == 30 and {e.status for e in entries} == {DeliveryStatus.DELIVERED}
    assert len(received) == 30 and set(received.values()) == {1}


async def test_a_database_file_made_read_only_loses_nothing_and_sends_nothing_twice(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    """The SQLite file turns read-only for over twice the lease while the worker sends:
    nothing can be recorded, claimed or renewed. The worker keeps what it sent, writes it
    once the file is writable again, and carries on by itself; each email goes once."""
    if store.dialect != "sqlite" or shutil.which("chattr") is None:
        pytest.skip("makes the SQLite file immutable with chattr")
    database = Path(str(store.engine.url.database))
    async with Sandbox(tmp_path / "box", email_faults=SLOW, channels=["email"]) as sandbox:
        await queue_emails(service, appeals=40)
        worker = email_worker(make_worker, sandbox, lease_seconds=1.5)
        run = asyncio.create_task(worker.run(drain=True))
        await sending(store)
        with read_only(database):
            # Real time: leases run out on the clocks of the worker and the database.
            await asyncio.sleep(4)
            sent_meanwhile = len(sandbox.emails)
        await asyncio.wait_for(run, timeout=60)
        received = Counter(str(m["Message-ID"]) for m in sandbox.emails)
    entries = await store.list_deliveries()
    assert 0 < sent_meanwhile < 80  # it stopped sending while it could not record
    assert len(entries) == 80 and {e.status for e in entries} == {DeliveryStatus.DELIVERED}
    assert len(received) == 80 and set(received.values()) == {1}


async def test_a_schema_that_does_not_match_stops_the_worker_with_one_sentence(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    """A table the claim needs disappears mid-run: waiting does not mend that. The worker
    claims nothing more, records what it sent, and stops with one sentence; once the
    schema is back, the next worker sends the rest, and nothing goes twice."""
    async with Sandbox(tmp_path / "box", email_faults=SLOW, channels=["email"]) as sandbox:
        await queue_emails(service, appeals=40)
        worker = email_worker(make_worker, sandbox, lease_seconds=None)
        run = asyncio.create_task(worker.run(drain=True))
        await sending(store)
        async with table_renamed(store, "pacing"):
            with pytest.raises(WorkerStopped) as stopped:
                await asyncio.wait_for(run, timeout=30)
            first_run = len(sandbox.emails)
        assert "schema does not match" in str(stopped.value)
        assert "pacing" in str(stopped.value) and "dispatcher migrate" in str(stopped.value)
        await asyncio.wait_for(make_worker(sandbox).run(drain=True), timeout=60)
        received = Counter(str(m["Message-ID"]) for m in sandbox.emails)
    entries = await store.list_deliveries()
    assert 0 < first_run < 80
    assert len(entries) == 80 and {e.status for e in entries} == {DeliveryStatus.DELIVERED}
    assert len(received) == 80 and set(received.values()) == {1}
