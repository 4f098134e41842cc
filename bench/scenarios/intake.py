"""Intake: ``POST /api/campaigns/{id}/appeals`` against ``dispatcher serve --no-worker``
in its own process, from this process (the load generator: aiohttp, cheaper than httpx,
so the client is not what limits), 32 connections, each request a distinct supporter
(every appeal stored: supporter, appeal and its deliveries in one transaction), the
intake's rate limits off (bench/common.py's serve_env). SQLite, then PostgreSQL.

Target (the issue's): at least 1,000 appeals/s with p99 under 100 ms on SQLite. Every
202 must be stored: the campaign's report must count them all.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    DISPATCHER,
    drop_postgres,
    free_port,
    fresh_postgres,
    serve_env,
)
from bench.servers import cumulative
from bench.suite import Context, Row, peak_rss_mb, percentiles
from bench.worker_drain import CAMPAIGN, write_campaign

CONNECTIONS = 32
TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0
WARM_UP = CONNECTIONS  # requests before the measured ones (stored too)


@dataclass
class Load:
    """What the load generator saw."""

    requests: int
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)  # time.perf_counter()
    statuses: dict[int, int] = field(default_factory=dict)  # 0: no answer
    server_exit: int | None = None  # the server's exit code if it ended during the load


async def burst(
    session: aiohttp.ClientSession, base: str, first: int, load: Load, seconds: float = 60
) -> None:
    """``load.requests`` appeals from supporters ``first``…, CONNECTIONS at a time; none
    begun after ``seconds`` (``load.requests`` is then those sent)."""
    numbers = iter(range(first, first + load.requests))
    url = f"{base}/api/campaigns/{CAMPAIGN}/appeals"
    deadline = time.perf_counter() + seconds
    sent = 0

    async def user() -> None:
        nonlocal sent
        for n in numbers:
            if time.perf_counter() > deadline:
                return
            sent += 1
            body = {"supporter": {"name": f"Supporter {n}", "email": f"s{n}@example.org"}}
            started = time.perf_counter()
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = 0  # no answer (the server gone?): counted, not timed
            answered = time.perf_counter()
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if status:
                load.latencies_ms.append((answered - started) * 1000)
                load.answered_at.append(answered)

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(CONNECTIONS)))
    load.elapsed = time.perf_counter() - started
    load.requests = sent


async def serving(session: aiohttp.ClientSession, base: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{base} did not start serving in {seconds:g} s")


async def watch_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], peak_rss_mb(pid) or 0.0)
        await asyncio.sleep(0.1)


async def load_server(
    env: dict[str, str], work: Path, requests: int, seconds: float, processes: int = 1
) -> tuple[Load, int, float]:
    """``dispatcher serve --no-worker --processes N`` with ``env``, the warm-up, then the
    measured burst: the load seen, the appeals the report counts, and the first server
    process's peak RSS in MB."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [DISPATCHER, "serve", "--no-worker", "--port", str(port), "--log-level", "warning"]
    command += ["--processes", str(processes)]
    with (work / "serve.log").open("ab") as log:
        server = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
    peak, stop = [0.0], asyncio.Event()
    watcher = asyncio.create_task(watch_rss(server.pid, peak, stop))
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    load = Load(requests)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await serving(session, base)
            await burst(session, base, 0, Load(WARM_UP))
            await burst(session, base, WARM_UP, load, seconds)
            report = await report_of(session, base)
    finally:
        stop.set()
        await watcher
        load.server_exit = server.returncode  # None: it was still serving
        if server.returncode is None:
            server.terminate()
        await server.wait()
    # Appeals with a delivery to a provider, and those rehearsed on the sandbox: all.
    stored = int(report["appeals"]) + int(report["rehearsal"]["appeals"]) if report else -1
    return load, stored - WARM_UP if report else -1, peak[0]


async def report_of(session: aiohttp.ClientSession, base: str) -> dict[str, Any] | None:
    """The campaign's report, or None if the server does not answer."""
    try:
        async with session.get(f"{base}/api/campaigns/{CAMPAIGN}/report") as response:
            report: dict[str, Any] = await response.json()
            return report
    except aiohttp.ClientError:
        return None


def row_of(database: str, load: Load, stored: int, rss: float, processes: int = 1) -> Row:
    p50, p95, p99 = percentiles(load.latencies_ms)
    accepted = load.statuses.get(202, 0)
    rate = load.requests / load.elapsed if load.elapsed else 0.0
    wrong = []
    if accepted != load.requests:
        wrong.append(f"statuses {load.statuses}")
    if stored != accepted:
        wrong.append(f"MISMATCH: {accepted} answered 202, {stored} stored")
    if load.server_exit is not None:
        wrong.append(f"the server exited ({load.server_exit}) during the load")
    met: bool | None = None
    if database == "SQLite":
        met = rate >= TARGET_RATE and (p99 or 0.0) < TARGET_P99_MS and not wrong
    elif wrong:
        met = False
    start = load.answered_at[0] - load.latencies_ms[0] / 1000 if load.answered_at else 0.0
    return Row(
        scenario="intake",
        case=f"{database} · serve --no-worker --processes {processes} · {CONNECTIONS} connections",
        unit="appeals/s",
        rate=rate,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        peak_rss_mb=rss,
        wall_s=load.elapsed,
        against="target" if database == "SQLite" else "",
        against_rate=TARGET_RATE if database == "SQLite" else None,
        target=f"≥ 1,000/s and p99 < {TARGET_P99_MS:.0f} ms" if database == "SQLite" else "",
        met=met,
        note="; ".join(wrong) or f"{load.requests} supporters; all {stored} accepted stored",
        extra={"requests": load.requests, "statuses": load.statuses, "stored": stored},
        series=cumulative(load.answered_at, start),
    )


async def run(ctx: Context) -> list[Row]:
    requests = ctx.size(3000, 400)
    # At most this long a burst: fewer supporters if the server is slow (the row says).
    seconds = ctx.size(15, 2)
    # One process, then one per CPU (serve --processes) on SQLite; PostgreSQL with one.
    cases = [("SQLite", 1)] + ([] if ctx.quick else [("SQLite", os.cpu_count() or 1)])
    cases += [("PostgreSQL", 1)] if ctx.postgres and not ctx.quick else []
    rows = []
    for database, processes in dict.fromkeys(cases):
        rows.append(await _case(ctx, database, processes, requests, seconds))
    return rows


async def _case(ctx: Context, database: str, processes: int, requests: int, seconds: float) -> Row:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-intake-"))
    write_campaign(work / "campaigns")
    env = serve_env(work)
    name = None
    if database == "PostgreSQL":
        env["DISPATCHER_DATABASE_URL"], name = await fresh_postgres(ctx.postgres_url)
    try:
        load, stored, rss = await load_server(env, work, requests, seconds, processes)
    finally:
        if name is not None:
            await drop_postgres(ctx.postgres_url, name)
        kept = ctx.out / f"intake-{database.lower()}-{processes}-serve.log"
        shutil.copyfile(work / "serve.log", kept)  # what the server said, if anything
        shutil.rmtree(work, ignore_errors=True)
    return row_of(database, load, stored, rss, processes)
