"""What a separate worker's /healthz and /metrics say about a real worker: stopped on a
problem waiting does not mend, asked to stop, how long since it last claimed."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pytest

from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.intake import submit_appeal
from dispatcher.store import Store
from dispatcher.web.metrics import ClaimClock, WorkerMetrics
from dispatcher.web.worker_probe import WorkerProbe, probe_app
from dispatcher.worker import WorkerStopped
from tests.conftest import table_renamed
from tests.integration.conftest import MakeWorker, appeal


async def queue_an_email(service: Service) -> None:
    await submit_appeal(service, dataclasses.replace(appeal(), channels=["email"]))


async def test_a_worker_stopped_on_a_lasting_problem_is_unhealthy_and_says_why(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        await queue_an_email(service)
        worker = make_worker(sandbox)
        metrics = WorkerMetrics()
        metrics.watch(worker)
        probe = WorkerProbe(worker, service, metrics, asyncio.Event())
        transport = httpx.ASGITransport(app=probe_app(probe))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            ready = await client.get("/healthz")
            async with table_renamed(store, "pacing"):  # the claim needs it
                with pytest.raises(WorkerStopped):
                    await asyncio.wait_for(worker.run(drain=True), timeout=30)
                stopped = await client.get("/healthz")
                shown = (await client.get("/metrics")).text
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert stopped.status_code == 503
    body = stopped.json()
    assert body["status"] == "unhealthy" and body["worker"] == worker.name
    assert body["reason"].startswith("the worker stopped: the database schema does not match")
    assert "dispatcher_worker_stopped 1.0" in shown.splitlines()
    assert "dispatcher_queue_depth 2.0" in shown.splitlines()  # nothing went


async def test_a_worker_asked_to_stop_says_so(
    service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        stop = asyncio.Event()
        metrics = WorkerMetrics()
        probe = WorkerProbe(make_worker(sandbox), service, metrics, stop)
        transport = httpx.ASGITransport(app=probe_app(probe))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            stop.set()
            stopping = await client.get("/healthz")
    assert stopping.status_code == 503 and stopping.json()["status"] == "stopping"


async def test_the_last_claim_is_timed_from_when_the_claim_count_moved(
    service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        await queue_an_email(service)
        worker = make_worker(sandbox)
        now = [100.0]
        clock = ClaimClock(worker, clock=lambda: now[0])
        now[0] = 130.0
        assert clock.age() == 30.0  # nothing claimed yet: since the worker started
        await asyncio.wait_for(worker.run(drain=True), timeout=30)
        assert worker.stats.claims >= 1
        now[0] = 135.0
        assert clock.age() == 0.0  # seen to have moved now
        now[0] = 140.0
        assert clock.age() == 5.0
