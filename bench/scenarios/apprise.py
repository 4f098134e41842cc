"""Apprise, the notification library, sending the same emails to the same counting SMTP
server (bench/smtp_counter.py, its own process) as the dispatcher's email rows.

One Apprise object, reused, with a ``mailto://`` URL to the server (``mode=insecure``:
no TLS) and its plugin's throttle set to 0 (by default it pauses 5.5 s between
notifications to one server: that would be its pause measured, not its sending).
Apprise is synchronous: it runs in a thread. Its rate is first to last arrival on the
server's clock. A second row compares the dispatcher's SQLite one-worker email rate
(``ctx.peers["dispatcher_email"]``, from the dispatcher scenario) with Apprise's.
"""

from __future__ import annotations

import asyncio
import time

import apprise

from bench.email_ratio import CountingServer
from bench.servers import arrival_rate, cumulative
from bench.suite import Context, Row, percentiles

BODY = "Dear Minister,\n\n" + "We urge you to act. " * 60  # as bench/email_ratio.py's
SUBJECT = "Release everyone arbitrarily detained in Xinjiang"


def sender(port: int) -> apprise.Apprise:
    notifier = apprise.Apprise()
    url = (
        f"mailto://127.0.0.1:{port}?smtp=127.0.0.1&mode=insecure"
        "&from=appeals@dispatcher.invalid&to=official0@gov.example"
    )
    if not notifier.add(url):
        raise RuntimeError(f"Apprise refused {url}")
    for plugin in notifier:
        plugin.request_rate_per_sec = 0  # no pause between notifications
    return notifier


def send(notifier: apprise.Apprise, count: int, seconds: float) -> tuple[int, list[float]]:
    """Up to ``count`` notifications one after the other, none begun after ``seconds``:
    how many Apprise said went, and each one's latency in ms."""
    sent, latencies = 0, []
    deadline = time.perf_counter() + seconds
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        sent += bool(notifier.notify(body=BODY, title=SUBJECT))
        latencies.append((time.perf_counter() - started) * 1000)
    return sent, latencies


async def run(ctx: Context) -> list[Row]:
    count = ctx.size(300, 60)  # at most: Apprise is given 10 s (quick: 2 s)
    server = await CountingServer.start()
    try:
        notifier = sender(server.port)
        await asyncio.to_thread(send, notifier, 5, 5)  # warm-up, not counted
        await server.take()
        started = time.perf_counter()
        sent, latencies = await asyncio.to_thread(send, notifier, count, ctx.size(10, 2))
        count = len(latencies)  # those begun before the time was up
        wall = time.perf_counter() - started
        times = [float(t) for t in (await server.take())["times"]]
    finally:
        await server.stop()
    rate = arrival_rate(times)
    ctx.peers["apprise"] = rate
    p50, p95, p99 = percentiles(latencies)
    wrong = f"Apprise said {sent} of {count} went; the server took {len(times)}"
    rows = [
        Row(
            scenario="apprise",
            case="Apprise mailto://, one object, throttle 0, in a thread",
            unit="messages/s",
            rate=rate,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            wall_s=wall,
            against="limit email",
            against_rate=ctx.limits.get("email"),
            met=False if sent != count or len(times) != count else None,
            note=wrong if sent != count or len(times) != count else "",
            extra={"count": count, "sent": sent, "server_took": len(times)},
            series=cumulative(times, min(times, default=0.0)),
        )
    ]
    ours = ctx.peers.get("dispatcher_email")
    rows.append(
        Row(
            scenario="apprise",
            case="dispatcher email (SQLite, 1 worker, steady) ÷ Apprise",
            unit="messages/s",
            rate=ours,
            against="apprise",
            against_rate=rate,
            target="≥ 10",
            target_ratio=10,
            note="" if ours else "no dispatcher email rate: run the dispatcher scenario too",
        )
    )
    return rows
