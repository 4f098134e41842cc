"""Wake-ups: an idle worker starts on new work when it is announced, not at its next poll.

The workers here poll only every 30 s, so a send within the test's few seconds can only
come from a wake-up: in-process on both databases, across processes (two engines) with
LISTEN/NOTIFY on PostgreSQL, and again after the listening connection is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatcher.models import DeliveryStatus
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.validation import AppealRequest
from dispatcher.store import Store
from dispatcher.worker import Worker, WorkerStats
from tests.conftest import OPEN_CAMPAIGN, settings_for, submitted


def email_appeal(n: int) -> AppealRequest:
    return AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name=f"Supporter {n}",
        supporter_email=f"s{n}@example.org",
        targets=["xi-jinping"],
        channels=["email"],
    )


async def delivered(store: Store, count: int) -> None:
    """Until ``count`` deliveries are delivered (the caller bounds the wait)."""
    while True:
        entries = await store.list_deliveries()
        if sum(e.status is DeliveryStatus.DELIVERED for e in entries) >= count:
            return
        await asyncio.sleep(0.02)


async def run_idle_worker(
    service: Service, sandbox: Sandbox, campaigns_dir: Path
) -> tuple[asyncio.Task[WorkerStats], asyncio.Event, Worker]:
    settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
    sleepy = settings.worker.model_copy(update={"idle_seconds": 30})
    worker = build_worker(settings.model_copy(update={"worker": sleepy}), service)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    await asyncio.sleep(0.3)  # it has looked, found nothing and gone to sleep
    return task, stop, worker


async def test_an_appeal_wakes_the_worker_of_the_same_process(
    service: Service, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        task, stop, worker = await run_idle_worker(service, sandbox, campaigns_dir)
        try:
            await submitted(service, email_appeal(1))
            await asyncio.wait_for(delivered(service.store, 1), timeout=10)
        finally:
            stop.set()
            await task
            await close_adapters(worker)


async def test_an_appeal_from_another_process_wakes_the_worker_through_postgresql(
    service: Service, campaigns_dir: Path, tmp_path: Path, database_url: str
) -> None:
    if service.store.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers in other processes poll")
    # The intake side has its own engine and connections, as a `serve` process would.
    intake_store = await Store.open(database_url)
    intake = dataclasses.replace(service, store=intake_store)
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        task, stop, worker = await run_idle_worker(service, sandbox, campaigns_dir)
        try:
            await asyncio.wait_for(service.store.notifier.listening.wait(), timeout=5)
            await submitted(intake, email_appeal(1))
            await asyncio.wait_for(delivered(service.store, 1), timeout=10)
            # Kill the listening connection from the server's side: it reconnects.
            async with intake_store.engine.begin() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                    )
                )
            assert killed == 1
            await asyncio.sleep(0.1)
            await asyncio.wait_for(service.store.notifier.listening.wait(), timeout=10)
            await submitted(intake, email_appeal(2))
            await asyncio.wait_for(delivered(service.store, 2), timeout=10)
        finally:
            stop.set()
            await task
            await close_adapters(worker)
            await intake_store.close()
