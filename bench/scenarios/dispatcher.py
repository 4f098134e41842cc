"""The dispatcher: a queue of appeals delivered by ``dispatcher worker --drain`` processes
to the servers the ``limit`` scenario measured (bench/drain_case.py).

SQLite with one worker; PostgreSQL with 1, 2 and 4 (when a server answers); email, fax
and X each alone, and the three mixed. Two rows a case:

* ``steady``: first to last arrival on the servers' clocks (start-up not counted);
* ``wall``: deliveries ÷ the time from the workers' launch to the last one's exit (the
  issue's targets are stated with the wall time included).

Latency is from the queue's release to the workers (their launch) to the delivery being
recorded delivered, from the database; peak RSS is the largest worker's VmHWM. Every row
checks that what the servers took is what the database records as delivered.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from bench.drain_case import Drained, drain_on
from bench.servers import TARGETS, Servers, arrival_rate, cumulative
from bench.suite import Context, Row, percentiles

KINDS = {"email": ["email"], "fax": ["fax"], "x": ["twitter"], "mixed": ["email", "fax", "twitter"]}
# The targets: (kind, database, workers) → the ratio to the limit, of the wall
# row (start-up included); fax and X, of the steady rows.
TARGETS_WALL = {("email", "SQLite", 1): 0.8, ("email", "PostgreSQL", 4): 0.7}
TARGETS_STEADY = {"fax": 0.5, "x": 0.5}


def plan(ctx: Context) -> list[tuple[str, int, str]]:
    """(database, workers, kind) in the order run."""
    if ctx.quick:  # PostgreSQL's cases left out: the whole quick run is under a minute
        return [("SQLite", 1, "email"), ("SQLite", 1, "mixed")]
    databases = [("SQLite", 1)]
    if ctx.postgres:
        databases += [("PostgreSQL", 1), ("PostgreSQL", 2), ("PostgreSQL", 4)]
    return [(db, n, kind) for db, n in databases for kind in KINDS]


def appeals(ctx: Context, kind: str) -> int:
    """Appeals for a case: each is TARGETS deliveries per channel asked for."""
    deliveries = {
        "email": ctx.size(2000, 200),
        "fax": ctx.size(300, 100),
        "x": ctx.size(600, 200),
        "mixed": ctx.size(200, 100),  # per channel
    }[kind]
    return max(1, deliveries // TARGETS)


def against(ctx: Context, kind: str, done: Drained) -> tuple[str, float | None]:
    """The limit a case is a ratio to; mixed: the time the blast clients would take for the
    same deliveries one channel after the other (a harmonic mean of their limits)."""
    if kind != "mixed":
        return f"limit {kind}", ctx.limits.get(kind)
    seconds = 0.0
    for channel, times in done.taken.items():
        if not ctx.limits.get(channel):
            return "limit mixed", None
        seconds += len(times) / ctx.limits[channel]
    total = sum(len(times) for times in done.taken.values())
    return "limit mixed", total / seconds if seconds else None


def problems(done: Drained) -> str:
    """What does not add up: the servers against the database, the queue, exit codes."""
    took = sum(len(times) for times in done.taken.values())
    delivered = done.statuses.get("delivered", 0)
    found = []
    if took != delivered:
        found.append(f"MISMATCH: the servers took {took}, the database records {delivered}")
    if delivered != done.expected:
        found.append(f"{delivered} of {done.expected} delivered ({done.statuses})")
    if any(done.codes):
        found.append(f"workers exited {done.codes}")
    return "; ".join(found)


def rows_of(ctx: Context, case: tuple[str, int, str], done: Drained) -> list[Row]:
    database, workers, kind = case
    arrivals = [t for times in done.taken.values() for t in times]
    delivered = done.statuses.get("delivered", 0)
    wrong = problems(done)
    name, limit = against(ctx, kind, done)
    p50, p95, p99 = percentiles([s * 1000 for s in done.latencies])
    label = f"{kind} · {database} · {workers} worker{'s' if workers > 1 else ''}"
    ended = done.launched + done.wall
    steady_target = TARGETS_STEADY.get(kind)
    wall_target = TARGETS_WALL.get((kind, database, workers))
    steady = Row(
        scenario="dispatcher",
        case=f"{label} · steady",
        unit="deliveries/s",
        rate=arrival_rate(arrivals),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        peak_rss_mb=max(done.peak_rss_mb, default=None),
        wall_s=done.wall,
        against=name,
        against_rate=limit,
        target=f"≥ {steady_target}" if steady_target else "",
        target_ratio=steady_target,
        met=False if wrong else None,
        note=wrong,
        extra={
            "deliveries": done.expected,
            "server_took": len(arrivals),
            "recorded_delivered": delivered,
            "statuses": done.statuses,
            "exit_codes": done.codes,
            "peak_rss_mb_per_worker": done.peak_rss_mb,
            # The queue is seeded before the workers start: latency counts from their
            # launch (or the delivery's creation, if later) to its recording as delivered.
            "latency_from": "workers' launch",
            # Where the wall time goes: launch → first delivery recorded (imports, start-up),
            # and last delivery recorded → the last worker's exit (shutdown).
            "first_delivered_s": min(done.delivered_at, default=done.launched) - done.launched,
            "exit_after_last_s": ended - max(done.delivered_at, default=ended),
        },
    )
    wall = replace(
        steady,
        case=f"{label} · wall",
        rate=delivered / done.wall if done.wall else None,
        target=f"≥ {wall_target}, wall included" if wall_target else "",
        target_ratio=wall_target,
        # From the launch (nothing delivered yet) to the last delivery: one line a case.
        series=[(0.0, 0), *cumulative(done.delivered_at, done.launched)],
    )
    return [steady, wall]


async def run(ctx: Context) -> list[Row]:
    if not {"email", "fax", "x"} <= ctx.limits.keys():  # run alone: the limits first
        from bench.scenarios import limit

        await limit.run(ctx)
    rows: list[Row] = []
    async with Servers() as servers:
        for case in plan(ctx):
            database, workers, kind = case
            postgres = ctx.postgres_url if database == "PostgreSQL" else None
            done = await drain_on(servers, postgres, KINDS[kind], appeals(ctx, kind), workers)
            found = rows_of(ctx, case, done)
            if (kind, database, workers) == ("email", "SQLite", 1):
                ctx.peers["dispatcher_email"] = found[0].rate or 0.0
            for row in found:
                print(f"  {row.case}: {row.rate or 0:,.0f} {row.unit}", file=sys.stderr)
            rows += found
    return rows
