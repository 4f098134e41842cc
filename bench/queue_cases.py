"""One queue drained in a process of its own, for ``bench/scenarios/queue_library.py``
and ``backlog.py``: its peak RSS is then the queue's alone. Prints one JSON line.

    python -m bench.queue_cases pgqueuer URL --concurrency 24
    python -m bench.queue_cases ours URL --concurrency 24 [--stop-after 2000]

``pgqueuer``: the jobs already enqueued in URL's database, run by a QueueManager whose
entrypoint does nothing, until the queue is empty. ``ours``: the deliveries queued in
URL's database, run by our Worker (in this process) with an email adapter that succeeds
at once, so the store does everything a real send needs but the send: the claim with its
lease, an attempt row opened and closed, the outcome with the lease released.

Latency is from the job's (delivery's) creation, or the run's start if it was queued
before, to its outcome being written, stamped on this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from typing import Any

from bench.suite import peak_rss_mb, percentiles
from dispatcher.channels.base import UNGUARDED, LeaseGuard, SendResult
from dispatcher.models import Channel, ClaimedDelivery

POINTS = 200  # points of the plotted series at most


class NoopAdapter:
    """An email channel whose every send succeeds at once."""

    channel = Channel.EMAIL
    provider = "noop"
    finds_earlier = False

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        return None

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        return SendResult(confirmed=True, summary="noop")

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        return SendResult(confirmed=True)

    async def aclose(self) -> None:
        return None


def summary(
    pairs: list[tuple[dt.datetime, dt.datetime]], started: float, wall: float
) -> dict[str, Any]:
    """Rate, latency percentiles and the (seconds, cumulative done) series of
    (created, done) pairs; ``started`` is the run's start on the wall clock. Latency runs
    from when the job was queued, or from the start when it was queued before."""
    start = dt.datetime.fromtimestamp(started, dt.UTC)
    latencies = [(done - max(created, start)).total_seconds() * 1000 for created, done in pairs]
    p50, p95, p99 = percentiles(latencies)
    finished = sorted(done.timestamp() - started for _, done in pairs)
    step = max(1, len(finished) // POINTS)
    series = [
        (round(t, 3), i + 1)
        for i, t in enumerate(finished)
        if i % step == 0 or i == len(finished) - 1
    ]
    return {
        "done": len(pairs),
        "wall_s": wall,
        "rate": len(pairs) / wall if wall else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "series": series,
        # VmHWM, this process's own: ru_maxrss keeps the high-water mark of the process
        # it was forked from (the bench, with matplotlib loaded) across the exec.
        "peak_rss_mb": peak_rss_mb(os.getpid()),
    }


async def run_pgqueuer(url: str, concurrency: int) -> dict[str, Any]:
    import asyncpg
    from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
    from pgqueuer.adapters.persistence.queries import Queries
    from pgqueuer.core.qm import QueueManager
    from pgqueuer.domain.types import QueueExecutionMode

    conn = await asyncpg.connect(url)
    qm = QueueManager(Queries(AsyncpgDriver(conn)))

    @qm.entrypoint("noop")
    async def noop(job: Any) -> None:
        return None

    started = time.time()
    clock = time.perf_counter()
    await qm.run(
        batch_size=max(1, concurrency // 2),
        max_concurrent_tasks=concurrency,
        mode=QueueExecutionMode.drain,
        dequeue_timeout=dt.timedelta(seconds=1),
        log_aggregation_interval=dt.timedelta(0),
    )
    wall = time.perf_counter() - clock
    rows = await conn.fetch(
        "SELECT q.created AS created, s.created AS done FROM pgqueuer_log q "
        "JOIN pgqueuer_log s ON s.job_id = q.job_id AND s.status = 'successful' "
        "WHERE q.status = 'queued'"
    )
    await conn.close()
    return summary([(r["created"], r["done"]) for r in rows], started, wall)


async def run_ours(url: str, concurrency: int, stop_after: int | None) -> dict[str, Any]:
    from sqlalchemy import select

    from dispatcher.retry import RetryPolicy
    from dispatcher.settings import RetrySettings, WorkerSettings
    from dispatcher.store import Store
    from dispatcher.store.schema import attempts, deliveries
    from dispatcher.worker.core import Worker

    store = await Store.open(url)
    stop = asyncio.Event()
    sent = [0]

    def counted(_channel: Channel, _seconds: float) -> None:
        """A slice of a backlog: stop claiming once ``stop_after`` were sent."""
        sent[0] += 1
        if stop_after is not None and sent[0] >= stop_after:
            stop.set()

    worker = Worker(
        store,
        {Channel.EMAIL: NoopAdapter()},
        policy=RetryPolicy.from_settings(RetrySettings()),
        settings=WorkerSettings(email_concurrency=concurrency),
        concurrency={Channel.EMAIL: concurrency},
        poll_seconds=1.0,
        on_attempt=counted,
    )
    started = time.time()
    clock = time.perf_counter()
    await worker.run(drain=stop_after is None, stop=stop)
    wall = time.perf_counter() - clock
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(deliveries.c.created_at, attempts.c.finished_at)
                .join(attempts, attempts.c.delivery_id == deliveries.c.id)
                .where(attempts.c.outcome.is_not(None))
            )
        ).all()
    await store.close()
    return summary([(r.created_at, r.finished_at) for r in rows], started, wall)


async def drain_in_child(
    queue: str, url: str, *, concurrency: int, stop_after: int | None = None
) -> dict[str, Any]:
    """This module as a process of its own (see the docstring): its JSON line, read."""
    command = [sys.executable, "-m", "bench.queue_cases", queue, url]
    command += ["--concurrency", str(concurrency)]
    if stop_after:
        command += ["--stop-after", str(stop_after)]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {tail}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def main(args: argparse.Namespace) -> int:
    if args.queue == "pgqueuer":
        result = await run_pgqueuer(args.url, args.concurrency)
    else:
        result = await run_ours(args.url, args.concurrency, args.stop_after)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("queue", choices=["pgqueuer", "ours"])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--stop-after", type=int, default=None)
    parser.add_argument(
        "--log-level", default="info", help="our worker's, as `dispatcher worker`'s"
    )
    parsed = parser.parse_args()
    from dispatcher.cli import _run
    from dispatcher.logs import configure_logging

    configure_logging("console", parsed.log_level)
    raise SystemExit(_run(main(parsed)))
