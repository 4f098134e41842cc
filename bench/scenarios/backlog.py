"""A backlog: a million queued deliveries (20,000 with --quick), and what it costs a worker.

On each database, deliveries are queued in bulk (bench/bulk.py) to 10,000, then to the
full size. At each size the claim is timed in this process, as a worker makes it (the
store's ``claim_due_deliveries`` for a worker's free email slots, with its attempt rows
and the load of what it sends), ``CLAIMS`` times (10 with --quick) 0.1 s apart, so the
once-a-second upkeep in a claim (expiring overdue deliveries) is in the mean as often as
a worker meets it. Then a worker process (bench/queue_cases.py, a no-op email channel)
drains a slice of the full backlog: its peak RSS and rate.

Targets: a claim at the full size within 2 × its time at 10,000 (claims/s ratio ≥ 0.5),
and the worker's peak RSS ≤ 150 MB with the full backlog queued.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.bulk import fill
from bench.common import drop_postgres, fresh_postgres
from bench.queue_cases import drain_in_child
from bench.suite import Context, Row, percentiles
from dispatcher.models import Channel
from dispatcher.settings import WorkerSettings
from dispatcher.store import Store

CAMPAIGN = "ua-bench"
SMALL = 10_000
CLAIMS = 30
RSS_LIMIT_MB = 150


async def time_claims(store: Store, slots: int, claims: int) -> list[float]:
    """``claims`` claims for ``slots`` email deliveries, 0.1 s apart (after one more to
    warm up): each one's ms."""
    took = []
    for n in range(claims + 1):
        started = time.perf_counter()
        claimed = await store.claim_due_deliveries(
            "bench-claims",
            limit={Channel.EMAIL: slots},
            lease_seconds=600,
            providers={Channel.EMAIL: "noop"},
        )
        if n:  # the first warms the connections and the statements up
            took.append((time.perf_counter() - started) * 1000)
        assert len(claimed) == slots, f"a claim found {len(claimed)} of {slots} due"
        await asyncio.sleep(0.1)
    return took


def claim_row(label: str, size: int, took: list[float], against: float | None) -> Row:
    p50, p95, p99 = percentiles(took)
    mean = statistics.fmean(took)
    small = against is None
    return Row(
        scenario="backlog",
        case=f"claim · {label} · {size:,} queued",
        unit="claims/s",
        rate=1000 / mean,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        wall_s=sum(took) / 1000,
        against="" if small else f"claim at {SMALL:,}",
        against_rate=against,
        target="" if small else "≥ 0.5 (within 2 × the time)",
        target_ratio=None if small else 0.5,
        note=f"mean {mean:.1f} ms a claim of {WorkerSettings().email_concurrency}",
        extra={"claim_ms": took},
    )


async def backlog_case(
    label: str, url: str, full: int, drained: int, claims: int = CLAIMS
) -> list[Row]:
    slots = WorkerSettings().email_concurrency
    store = await Store.open(url)
    try:
        started = time.perf_counter()
        await fill(store.engine, SMALL, campaign=CAMPAIGN)
        small = await time_claims(store, slots, claims)
        await fill(store.engine, full, campaign=CAMPAIGN, already=SMALL)
        filled = time.perf_counter() - started
        large = await time_claims(store, slots, claims)
    finally:
        await store.close()
    print(f"backlog: {label}: {full:,} deliveries queued in {filled:.0f} s", flush=True)
    worker = await drain_in_child("ours", url, concurrency=slots, stop_after=drained)
    small_row = claim_row(label, SMALL, small, None)
    rss = worker["peak_rss_mb"]
    return [
        small_row,
        claim_row(label, full, large, small_row.rate),
        Row(
            scenario="backlog",
            case=f"worker · {label} · {worker['done']:,} of {full:,} queued · no-op channel",
            unit="deliveries/s",
            rate=worker["rate"],
            p50_ms=worker["p50_ms"],
            p95_ms=worker["p95_ms"],
            p99_ms=worker["p99_ms"],
            peak_rss_mb=rss,
            wall_s=worker["wall_s"],
            target=f"peak RSS ≤ {RSS_LIMIT_MB} MB",
            met=rss <= RSS_LIMIT_MB,
            series=[(t, n) for t, n in worker["series"]],
            note=f"queued in bulk in {filled:.0f} s",
        ),
    ]


async def run(ctx: Context) -> list[Row]:
    full = ctx.size(1_000_000, 20_000)
    drained = ctx.size(2_000, 200)
    claims = ctx.size(CLAIMS, 10)
    rows: list[Row] = []
    if ctx.postgres:
        url, name = await fresh_postgres(ctx.postgres_url)
        try:
            rows += await backlog_case("PostgreSQL", url, full, drained, claims)
        finally:
            await drop_postgres(ctx.postgres_url, name)
    else:
        print("backlog: no PostgreSQL answers; its case is skipped")
    work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    sqlite = f"sqlite+aiosqlite:///{work / 'backlog.db'}"
    rows += await backlog_case("SQLite", sqlite, full, drained, claims)
    return rows
