"""Wake-ups: an idle worker starts on new work when it is announced, not at its next poll.

The workers here poll only every 60 s, and the appeal is submitted once the worker has
looked, found nothing due and gone to sleep, so a send within the test's 10 s can only
come from a wake-up: in-process on both databases, across processes (two engines) with
LISTEN/NOTIFY on PostgreSQL, and again after the listening connection is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dispatcher.campaigns import CampaignCatalog
from dispatcher.models import ClaimedDelivery, DeliveryStatus, utcnow
from dispatcher.retry import RetryPolicy
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.validation import AppealRequest
from dispatcher.store import Store
from dispatcher.worker import Worker
from tests.conftest import FAST_RETRY, OPEN_CAMPAIGN, settings_for, submitted
from tests.waiting import eventually

# How long the idle worker sleeps between polls (and holds a lease): far beyond WAIT.
IDLE_SECONDS = 60
# How long a test waits for a send after it submitted the appeal.
WAIT = 10.0


class WatchedStore(Store):
    """The real store, keeping a note of each claim and each look-up of when work next
    falls due as a worker makes them. A worker whose last call was a look-up that found
    nothing due for longer than a test waits, with no call under way, is asleep: only a
    wake-up (or its idle poll, IDLE_SECONDS on) sets it going again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, dt.datetime | None]] = []
        self.under_way = 0

    async def claim_due_deliveries(self, *args: Any, **kwargs: Any) -> list[ClaimedDelivery]:
        self.under_way += 1
        try:
            return await super().claim_due_deliveries(*args, **kwargs)
        finally:
            self.under_way -= 1
            self.calls.append(("claim", None))

    async def next_due_at(self, *args: Any, **kwargs: Any) -> dt.datetime | None:
        self.under_way += 1
        try:
            due = await super().next_due_at(*args, **kwargs)
        finally:
            self.under_way -= 1
        self.calls.append(("next_due_at", due))
        return due

    def worker_asleep(self) -> bool:
        if self.under_way or not self.calls:
            return False
        call, due = self.calls[-1]
        return call == "next_due_at" and (
            due is None or due > utcnow() + dt.timedelta(seconds=2 * WAIT)
        )


@pytest.fixture
async def watched(database_url: str, catalog: CampaignCatalog) -> AsyncIterator[Service]:
    """The service over a WatchedStore, with the tests' fast retries."""
    store = await WatchedStore.open(database_url)
    try:
        yield Service(store, catalog, RetryPolicy.from_settings(FAST_RETRY), poll_seconds=0.05)
    finally:
        await store.close()


def email_appeal(n: int) -> AppealRequest:
    return AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name=f"Supporter {n}",
        supporter_email=f"s{n}@example.org",
        targets=["xi-jinping"],
        channels=["email"],
    )


async def delivered(store: Store, count: int) -> None:
    async def enough() -> bool:
        entries = await store.list_deliveries()
        return sum(e.status is DeliveryStatus.DELIVERED for e in entries) >= count

    await eventually(enough, what=f"{count} of the emails delivered", within=WAIT)


async def asleep(worker: Worker, handled: int) -> None:
    """Until ``worker`` has recorded ``handled`` outcomes and since looked for more and gone
    to sleep. (A finished send sets the worker claiming again at once, before its outcome
    can be written: by the time ``handled`` counts it, that claim is under way or done.)"""
    store = worker.store
    assert isinstance(store, WatchedStore)
    await eventually(
        lambda: worker.stats.handled == handled and store.worker_asleep(),
        what=f"the worker to go to sleep after {handled} sends",
    )


@contextlib.asynccontextmanager
async def idle_worker(
    service: Service, sandbox: Sandbox, campaigns_dir: Path
) -> AsyncIterator[Worker]:
    """A worker on ``service``'s store that polls every IDLE_SECONDS, running and asleep."""
    settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
    sleepy = settings.worker.model_copy(
        update={"idle_seconds": IDLE_SECONDS, "lease_seconds": IDLE_SECONDS}
    )
    worker = build_worker(settings.model_copy(update={"worker": sleepy}), service)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    try:
        await asleep(worker, handled=0)
        yield worker
    finally:
        stop.set()
        await task
        await close_adapters(worker)


async def test_an_appeal_wakes_the_worker_of_the_same_process(
    watched: Service, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with (
        Sandbox(tmp_path / "box", channels=["email"]) as sandbox,
        idle_worker(watched, sandbox, campaigns_dir),
    ):
        await submitted(watched, email_appeal(1))
        await delivered(watched.store, 1)


async def test_an_appeal_from_another_process_wakes_the_worker_through_postgresql(
    watched: Service, campaigns_dir: Path, tmp_path: Path, database_url: str
) -> None:
    if watched.store.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers in other processes poll")
    # The intake side has its own engine and connections, as a `serve` process would.
    intake_store = await Store.open(database_url)
    intake = dataclasses.replace(watched, store=intake_store)
    listening = watched.store.notifier.listening
    try:
        async with (
            Sandbox(tmp_path / "box", channels=["email"]) as sandbox,
            idle_worker(watched, sandbox, campaigns_dir) as worker,
        ):
            await asyncio.wait_for(listening.wait(), timeout=WAIT)
            await submitted(intake, email_appeal(1))
            await delivered(watched.store, 1)
            # Kill the listening connection from the server's side: it reconnects.
            async with intake_store.engine.begin() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                    )
                )
            assert killed == 1
            await eventually(lambda: not listening.is_set(), what="the listener noticing")
            await asyncio.wait_for(listening.wait(), timeout=WAIT)
            await asleep(worker, handled=1)
            await submitted(intake, email_appeal(2))
            await delivered(watched.store, 2)
    finally:
        await intake_store.close()
