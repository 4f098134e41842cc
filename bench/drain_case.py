"""One case of the ``dispatcher`` scenario: a queue seeded through the real intake, then
``dispatcher worker --drain`` in N processes against bench/servers.py's servers, timed
from their launch to the last one's exit, their peak RSS polled while they run, and what
each server took read back with what the database records.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import DISPATCHER, SECRET_KEY, clean_env, drop_postgres, fresh_postgres
from bench.servers import CAMPAIGN, TARGETS, Servers, env_of
from bench.suite import peak_rss_mb
from dispatcher.runtime import open_service
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import submit_appeal
from dispatcher.settings import Settings
from dispatcher.store.schema import deliveries


@dataclass
class Drained:
    """What a case measured."""

    expected: int  # deliveries queued
    wall: float  # launch of the workers to the last one's exit, seconds
    launched: float  # time.time() of the launch
    codes: list[int]
    peak_rss_mb: list[float]  # per worker
    taken: dict[str, list[float]]  # per channel (email, fax, x): the server's arrivals
    statuses: dict[str, int]  # deliveries by status, from the database
    # (recorded delivered, time.time()) and latencies from the launch (or the appeal's
    # creation, if later) to recorded delivered, seconds.
    delivered_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def seed(settings: Settings, channels: list[str], appeals: int) -> int:
    """``appeals`` appeals through the real intake service, each for every official on
    ``channels``; the deliveries queued."""
    async with open_service(settings) as service:
        for n in range(appeals):
            result = await submit_appeal(
                service,
                AppealRequest(
                    campaign_id=CAMPAIGN,
                    supporter_name=f"Supporter {n}",
                    supporter_email=f"supporter{n}@example.org",
                    channels=channels,
                    receipt=False,  # letters are measured, not supporters' receipts
                ),
            )
            if isinstance(result, Rejected):
                raise result.first
    return appeals * TARGETS * len(channels)


async def workers(
    env: dict[str, str], count: int, log: Path, give_up_after: float = 180
) -> tuple[list[int], list[float]]:
    """``count`` ``dispatcher worker --drain`` processes: their exit codes and peak RSS
    (VmHWM, polled every 0.1 s while they run). Any still running after ``give_up_after``
    seconds is terminated (its exit code says so)."""
    deadline = time.monotonic() + give_up_after
    with log.open("ab") as output:
        processes = [
            await asyncio.create_subprocess_exec(
                DISPATCHER, "worker", "--drain", env=env, stdout=output, stderr=output
            )
            for _ in range(count)
        ]
        peaks = [0.0] * count
        waits = [asyncio.ensure_future(p.wait()) for p in processes]
        while not all(w.done() for w in waits):
            for n, process in enumerate(processes):
                peaks[n] = max(peaks[n], peak_rss_mb(process.pid) or 0.0)
            await asyncio.wait(waits, timeout=0.1)
            if time.monotonic() > deadline:
                for process in processes:
                    if process.returncode is None:
                        process.terminate()
    return [w.result() for w in waits], peaks


async def recorded(settings: Settings) -> tuple[dict[str, int], list[Any]]:
    """Deliveries by status, and the delivered ones' (created, recorded) times."""
    async with open_service(settings) as service, service.store.engine.connect() as conn:
        counted = await conn.execute(
            select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        )
        statuses = {str(status): int(n) for status, n in counted}
        rows = await conn.execute(
            select(deliveries.c.created_at, deliveries.c.updated_at).where(
                deliveries.c.status == "delivered"
            )
        )
        return statuses, list(rows)


async def drain(
    servers: Servers, work: Path, database_url: str, channels: list[str], appeals: int, count: int
) -> Drained:
    """Seed, drain with ``count`` workers, read back."""
    sections = servers.provider_settings(channels)
    # Validated as given (no environment, no .env file): the seeding service's settings
    # name the same providers as the workers', so each delivery records its provider.
    settings = Settings.model_validate(
        {
            "database_url": database_url,
            "campaigns_dir": servers.work / "campaigns",
            "secret_key": SECRET_KEY,
            **sections,
        }
    )
    expected = await seed(settings, channels, appeals)
    env = clean_env() | env_of(sections)
    env |= {
        "DISPATCHER_DATABASE_URL": database_url,
        "DISPATCHER_CAMPAIGNS_DIR": str(servers.work / "campaigns"),
        "DISPATCHER_SANDBOX__DIRECTORY": str(work / "worker-sandbox"),
        "DISPATCHER_SECRET_KEY": SECRET_KEY,
    }
    launched, started = time.time(), time.perf_counter()
    codes, peaks = await workers(env, count, work / "workers.log")
    wall = time.perf_counter() - started
    taken = {}
    for ours, channel in (("email", "email"), ("fax", "fax"), ("twitter", "x")):
        if ours in channels:
            taken[channel] = await servers.arrivals(channel, expected // len(channels), 5)
    statuses, rows = await recorded(settings)
    done = Drained(expected, wall, launched, codes, peaks, taken, statuses)
    for created, updated in rows:
        done.delivered_at.append(updated.timestamp())
        done.latencies.append(updated.timestamp() - max(created.timestamp(), launched))
    return done


async def drain_on(
    servers: Servers, postgres: str | None, channels: list[str], appeals: int, count: int
) -> Drained:
    """:func:`drain` on a fresh SQLite file, or a fresh database on the PostgreSQL server
    ``postgres`` (dropped after)."""
    work = servers.work / f"case-{time.monotonic_ns()}"
    work.mkdir()
    if postgres is None:
        sqlite = f"sqlite+aiosqlite:///{work / 'bench.db'}"
        return await drain(servers, work, sqlite, channels, appeals, count)
    url, name = await fresh_postgres(postgres)
    try:
        return await drain(servers, work, url, channels, appeals, count)
    finally:
        await drop_postgres(postgres, name)
