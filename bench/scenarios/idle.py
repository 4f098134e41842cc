"""Single appeals to an idle system: from submitting one to its first send attempt.

``dispatcher serve`` (its embedded worker and sandbox) on SQLite and on PostgreSQL, each
in a process of its own. This process posts one appeal at a time to the API, by email,
and waits past the worker's idle poll (a second) before the next, so each arrives to a
worker asleep. Latency is the first attempt's start (stamped by the worker's claim) minus
the appeal's creation (stamped by intake), both read from the database afterwards. Target:
p50 ≤ 50 ms on both (the worker is woken by the intake, not found by its poll).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from asyncio.subprocess import Process
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.common import drop_postgres, free_port, fresh_postgres, serve_env, wait_until_serving
from bench.suite import Context, Row, peak_rss_mb, percentiles
from bench.worker_drain import CAMPAIGN, write_campaign
from dispatcher.store import Store
from dispatcher.store.schema import appeals, attempts, deliveries

TARGET_MS = 50.0
PAUSE = 1.3  # past the worker's idle poll of a second: it is asleep when the next arrives


async def first_attempts(url: str) -> list[float]:
    """Each appeal's first attempt start minus its creation, in ms."""
    store = await Store.open(url, migrate_schema=False)
    try:
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(appeals.c.created_at, func.min(attempts.c.started_at))
                    .select_from(
                        appeals.join(deliveries, deliveries.c.appeal_id == appeals.c.id).join(
                            attempts, attempts.c.delivery_id == deliveries.c.id
                        )
                    )
                    .group_by(appeals.c.id, appeals.c.created_at)
                )
            ).all()
    finally:
        await store.close()
    return [(first - created).total_seconds() * 1000 for created, first in rows]


async def submit_one_at_a_time(client: httpx.AsyncClient, count: int) -> None:
    for n in range(count):
        body = {
            "supporter": {"name": f"Supporter {n}", "email": f"idle{n}@example.org"},
            "channels": ["email"],
        }
        response = await client.post(f"/api/campaigns/{CAMPAIGN}/appeals", json=body)
        assert response.status_code == 202, response.text
        await asyncio.sleep(PAUSE)


async def start_serve(work: Path, campaigns: Path, url: str) -> tuple[Process, int]:
    """``dispatcher serve`` on ``url`` in a process of its own: it and its port."""
    work.mkdir(parents=True, exist_ok=True)
    env = serve_env(work) | {
        "DISPATCHER_DATABASE_URL": url,
        "DISPATCHER_CAMPAIGNS_DIR": str(campaigns),
    }
    port = free_port()
    dispatcher = str(Path(sys.executable).with_name("dispatcher"))
    server = await asyncio.create_subprocess_exec(
        *[dispatcher, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return server, port


async def idle_case(label: str, server: Process, port: int, url: str, count: int) -> Row:
    started = time.perf_counter()
    rss = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await wait_until_serving(client)
            await asyncio.sleep(PAUSE)  # started, found nothing, asleep
            await submit_one_at_a_time(client, count)
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        await server.wait()
    latencies = await first_attempts(url)
    p50, p95, p99 = percentiles(latencies)
    return Row(
        scenario="idle",
        case=f"submit → first attempt · {label} · serve (embedded worker, sandbox SMTP)",
        unit="ms",
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        peak_rss_mb=rss,
        wall_s=time.perf_counter() - started,
        target=f"p50 ≤ {TARGET_MS:.0f} ms",
        met=p50 is not None and p50 <= TARGET_MS and len(latencies) == count,
        note=f"{len(latencies)} of {count} appeals, one at a time, {PAUSE} s apart",
        extra={"latencies_ms": latencies},
    )


async def run(ctx: Context) -> list[Row]:
    count = ctx.size(20, 2)
    work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-idle-"))
    campaigns = work / "campaigns"
    write_campaign(campaigns)
    urls = {"SQLite": f"sqlite+aiosqlite:///{work / 'idle.db'}"}
    pg_name = None
    if ctx.postgres:
        urls["PostgreSQL"], pg_name = await fresh_postgres(ctx.postgres_url)
    else:
        print("idle: no PostgreSQL answers; its case is skipped")
    servers: dict[str, tuple[Process, int]] = {}
    try:
        # Both servers start at once (a few seconds of imports each); then each is measured
        # in turn, the other idle meanwhile.
        for label, url in urls.items():
            servers[label] = await start_serve(work / label, campaigns, url)
        rows = []
        for label, (server, port) in servers.items():
            rows.append(await idle_case(label, server, port, urls[label], count))
        return rows
    finally:
        for server, _ in servers.values():
            if server.returncode is None:
                server.terminate()
                await server.wait()
        if pg_name is not None:
            await drop_postgres(ctx.postgres_url, pg_name)
