"""Benchmark: from an appeal submitted to an idle system to its first send attempt.

One ``dispatcher worker`` process with the default settings (it polls once a second when
idle), on SQLite and on PostgreSQL, side by side in one run. This process submits appeals
one at a time with pauses, so the worker is idle each time, through a store of its own
(as a ``serve`` process would). Latency is the delivery's first attempt's start minus the
appeal's creation, both stamped by the processes on this machine's clock.

    .venv/bin/python -m bench.wakeup_latency
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from sqlalchemy import select

from bench.common import DEFAULT_POSTGRES, clean_env, drop_postgres, fresh_postgres
from bench.worker_drain import CAMPAIGN, write_campaign
from dispatcher.runtime import open_service
from dispatcher.sandbox import Sandbox
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import submit_appeal
from dispatcher.settings import Settings
from dispatcher.store.schema import appeals, attempts, deliveries


async def latencies(settings: Settings, sandbox: Sandbox, count: int) -> list[float]:
    env = clean_env()
    env.update(
        {
            "DISPATCHER_DATABASE_URL": settings.database_url,
            "DISPATCHER_CAMPAIGNS_DIR": str(settings.campaigns_dir),
            "DISPATCHER_SANDBOX__SMTP_PORT": str(sandbox.smtp_port),
        }
    )
    dispatcher = str(Path(sys.executable).with_name("dispatcher"))
    worker = await asyncio.create_subprocess_exec(
        dispatcher, "worker", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with open_service(settings) as service:
            await asyncio.sleep(3)  # started, found nothing, asleep
            for n in range(count):
                result = await submit_appeal(
                    service,
                    AppealRequest(
                        campaign_id=CAMPAIGN,
                        supporter_name=f"Supporter {n}",
                        supporter_email=f"s{n}@example.org",
                        targets=["xi-jinping"],
                        channels=["email"],
                    ),
                )
                if isinstance(result, Rejected):
                    raise result.first
                await asyncio.sleep(1.3)  # idle again (past a whole poll interval)
            async with service.store.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(appeals.c.created_at, attempts.c.started_at)
                        .select_from(
                            deliveries.join(appeals, appeals.c.id == deliveries.c.appeal_id).join(
                                attempts, attempts.c.delivery_id == deliveries.c.id
                            )
                        )
                        .where(attempts.c.number == 1)
                    )
                ).all()
    finally:
        worker.terminate()
        await worker.wait()
    return [(started - created).total_seconds() * 1000 for created, started in rows]


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    write_campaign(work / "campaigns")
    pg_url, pg_name = await fresh_postgres(args.postgres_url)
    try:
        async with Sandbox(work / "sandbox", channels=["email"]) as sandbox:
            for label, url in (
                ("SQLite (polling)", f"sqlite+aiosqlite:///{work / 'bench.db'}"),
                ("PostgreSQL (LISTEN/NOTIFY)", pg_url),
            ):
                settings = Settings(
                    _env_file=None,  # type: ignore[call-arg]
                    database_url=url,
                    campaigns_dir=work / "campaigns",
                )
                ms = sorted(await latencies(settings, sandbox, args.appeals))
                print(
                    f"{label}: {len(ms)} appeals to an idle worker, submit → first attempt "
                    f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms"
                )
    finally:
        await drop_postgres(args.postgres_url, pg_name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appeals", type=int, default=10)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    asyncio.run(main(parser.parse_args()))
