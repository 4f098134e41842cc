"""Our queue against a queue library: pgqueuer and our store, on the same PostgreSQL.

The same N jobs, queued in bulk before the clock starts, drained at the same concurrency
(our worker's email slots): pgqueuer's QueueManager with an entrypoint that does nothing,
and our Worker with an email adapter that succeeds at once, which still leases each
delivery, opens and closes its attempt row and writes its outcome. Each runs in a process
of its own (bench/queue_cases.py), so its peak RSS is its own; the library runs before
and after ours, and ours is compared with the mean. Target: ours ≥ 1.0 × the library's
jobs/s.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from bench.bulk import fill
from bench.common import drop_postgres, fresh_postgres
from bench.queue_cases import drain_in_child
from bench.suite import Context, Row
from dispatcher.settings import WorkerSettings
from dispatcher.store import Store

CAMPAIGN = "ua-bench"
ENQUEUE_CHUNK = 10_000


def _row(result: dict[str, Any], **fields: Any) -> Row:
    return Row(
        scenario="queue-library",
        rate=result["rate"],
        p50_ms=result["p50_ms"],
        p95_ms=result["p95_ms"],
        p99_ms=result["p99_ms"],
        peak_rss_mb=result["peak_rss_mb"],
        wall_s=result["wall_s"],
        series=[(t, n) for t, n in result["series"]],
        extra={"done": result["done"]},
        **fields,
    )


async def pgqueuer_case(ctx: Context, count: int, concurrency: int) -> dict[str, Any]:
    import asyncpg
    from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
    from pgqueuer.adapters.persistence.queries import Queries

    url, name = await fresh_postgres(ctx.postgres_url)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            queries = Queries(AsyncpgDriver(conn))
            await queries.install()
            for start in range(0, count, ENQUEUE_CHUNK):
                k = min(ENQUEUE_CHUNK, count - start)
                await queries.enqueue(["noop"] * k, [None] * k, [0] * k)
        finally:
            await conn.close()
        return await drain_in_child("pgqueuer", dsn, concurrency=concurrency)
    finally:
        await drop_postgres(ctx.postgres_url, name)


async def ours_case(ctx: Context, count: int, concurrency: int) -> dict[str, Any]:
    url, name = await fresh_postgres(ctx.postgres_url)
    try:
        store = await Store.open(url)
        try:
            await fill(store.engine, count, campaign=CAMPAIGN)
        finally:
            await store.close()
        return await drain_in_child("ours", url, concurrency=concurrency)
    finally:
        await drop_postgres(ctx.postgres_url, name)


async def run(ctx: Context) -> list[Row]:
    if not ctx.postgres:
        print("queue_library: no PostgreSQL answers; skipped (pgqueuer needs it)")
        return []
    count = ctx.size(20_000, 1_000)
    concurrency = WorkerSettings().email_concurrency
    at_once = f"{count:,} queued · {concurrency} at once"
    # The library before and after ours: on a shared machine the load drifts, and ours is
    # compared with the mean of both.
    before = await pgqueuer_case(ctx, count, concurrency)
    ours = await ours_case(ctx, count, concurrency)
    after = await pgqueuer_case(ctx, count, concurrency)
    library = before if before["rate"] >= after["rate"] else after
    rate = (before["rate"] + after["rate"]) / 2
    ctx.peers["pgqueuer"] = rate
    return [
        _row(
            library,
            case=f"pgqueuer · PostgreSQL · no-op job · {at_once} (faster of two)",
            unit="jobs/s",
            note=f"before ours {before['rate']:.0f} jobs/s, after {after['rate']:.0f}",
        ),
        _row(
            ours,
            case=f"our store + worker · PostgreSQL · no-op channel · {at_once}",
            unit="deliveries/s",
            against="pgqueuer (mean)",
            against_rate=rate,
            target="≥ 1.0",
            target_ratio=1.0,
            note="each delivery leased, its attempt row opened and closed, its outcome written",
        ),
    ]
