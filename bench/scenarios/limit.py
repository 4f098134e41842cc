"""The limit: what each channel's server takes from a blast client with no database.

Each server in its own process (bench/servers.py): 8 pooled aiosmtplib connections to
the counting SMTP server; aiohttp, 8 uploads at a time, a ready-made letter PDF to the
sandbox's fax gateway; aiohttp, 8 at a time, OAuth 1.0a-signed posts to the sandbox's X
API. A warm-up blast first, not counted (the servers' rates climb over their first
thousands), then the measured one; the rate is first to last arrival on the server's
clock. Every later row of the run is a ratio to ``ctx.limits[channel]``.
"""

from __future__ import annotations

import time

from bench.servers import POOL, SLOTS, Servers, arrival_rate, cumulative
from bench.suite import Context, Row

CLIENTS = {
    "email": f"{POOL} aiosmtplib connections → counting SMTP server",
    "fax": f"aiohttp, {SLOTS} uploads at a time → sandbox fax gateway",
    "x": f"aiohttp, {SLOTS} at a time, OAuth 1.0a → sandbox X API",
}


async def measure(servers: Servers, channel: str, count: int, warm_up: int) -> Row:
    """One channel's blast: warm-up, then ``count`` measured."""
    await servers.blast(channel, warm_up, "warm-up")
    await servers.arrivals(channel, warm_up)
    started = time.perf_counter()
    await servers.blast(channel, count, "limit")
    times = await servers.arrivals(channel, count)
    wall = time.perf_counter() - started
    rate = arrival_rate(times)
    return Row(
        scenario="limit",
        case=f"{channel} · {CLIENTS[channel]}",
        unit="deliveries/s",
        rate=rate,
        wall_s=wall,
        note=f"{len(times)} of {count} taken" if len(times) != count else "",
        extra={"count": count, "warm_up": warm_up},
        series=cumulative(times, min(times, default=0.0)),
    )


async def run(ctx: Context) -> list[Row]:
    sizes = {
        "email": (ctx.size(2000, 400), ctx.size(1000, 200)),
        "fax": (ctx.size(1500, 200), ctx.size(800, 100)),
        "x": (ctx.size(4000, 400), ctx.size(2000, 200)),
    }
    rows = []
    async with Servers() as servers:
        for channel, (count, warm_up) in sizes.items():
            row = await measure(servers, channel, count, warm_up)
            ctx.limits[channel] = row.rate or 0.0
            rows.append(row)
    return rows
