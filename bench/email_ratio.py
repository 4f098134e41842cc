"""Benchmark: the dispatcher's email rate as a fraction of what the SMTP server can take.

In one run, against one independent counting SMTP server (bench/smtp_counter.py, its own
process): a blast client (a pool of aiosmtplib connections sending ready-made messages),
then ``dispatcher worker --drain`` in one or more processes over the queued appeals,
then the blast client again. Rates are taken from the server's clock (first to last
message), so process start-up is not counted. Prints both rates and their ratio, and
checks that every message the server took is recorded as delivered in the database.

    .venv/bin/python -m bench.email_ratio --database sqlite
    .venv/bin/python -m bench.email_ratio --database postgres --workers 4 \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import update
from sqlalchemy.engine import make_url

from bench.worker_drain import CAMPAIGN, seed, write_campaign
from dispatcher.cli import _run
from dispatcher.models import utcnow
from dispatcher.runtime import open_service
from dispatcher.service import Service
from dispatcher.service.reporting import campaign_report
from dispatcher.settings import Settings
from dispatcher.store.schema import deliveries

HERE = Path(__file__).resolve().parent


class CountingServer:
    """bench/smtp_counter.py in a subprocess."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls) -> CountingServer:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "smtp_counter.py"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        port = int(await process.stdout.readline())
        return cls(process, port)

    async def take(self) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"take\n")
        await self.process.stdin.drain()
        taken: dict[str, Any] = json.loads(await self.process.stdout.readline())
        return taken

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()


def rate(taken: dict[str, Any]) -> float:
    span = taken["last"] - taken["first"]
    return float(taken["messages"] - 1) / span if span > 0 else 0.0


def messages(count: int) -> list[tuple[str, bytes]]:
    made = []
    for n in range(count):
        message = EmailMessage()
        message["From"] = "Supporter via Appeal Dispatcher <appeals@dispatcher.invalid>"
        message["To"] = f"Official <official{n}@gov.example>"
        message["Subject"] = "Release everyone arbitrarily detained in Xinjiang"
        message.set_content("Dear Minister,\n\n" + "We urge you to act. " * 60, charset="utf-8")
        made.append((f"official{n}@gov.example", message.as_bytes()))
    return made


async def blast(port: int, count: int, pool: int) -> None:
    """``count`` messages over ``pool`` connections as fast as the server answers."""
    queue = messages(count)

    async def one_connection() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
            while queue:
                recipient, data = queue.pop()
                await smtp.sendmail("appeals@dispatcher.invalid", [recipient], data)

    await asyncio.gather(*(one_connection() for _ in range(pool)))


async def drain(
    settings: Settings,
    port: int,
    workers: int,
    pool: int,
    profile: str | None = None,
    slots: int | None = None,
) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_DATABASE_URL": settings.database_url,
            "DISPATCHER_CAMPAIGNS_DIR": str(settings.campaigns_dir),
            "DISPATCHER_EMAIL__HOST": "127.0.0.1",
            "DISPATCHER_EMAIL__PORT": str(port),
            "DISPATCHER_EMAIL__START_TLS": "false",
            "DISPATCHER_EMAIL__POOL_SIZE": str(pool),
            # Every appeal writes to the same two inboxes: per-recipient pacing (30 a minute
            # by default) would measure the pacing, not the send path.
            "DISPATCHER_EMAIL__PER_RECIPIENT_PER_MINUTE": "0",
        }
    )
    if slots:
        env["DISPATCHER_WORKER__EMAIL_CONCURRENCY"] = str(slots)
    dispatcher = str(Path(sys.executable).with_name("dispatcher"))
    command = [dispatcher, "worker", "--drain"]
    # py-spy samples the first worker: collapsed stacks, one line per stack with its count.
    spy = ["py-spy", "record", "--format", "raw", "--rate", "200", "-o", profile or "", "--"]
    processes = [
        await asyncio.create_subprocess_exec(
            *(spy if profile and n == 0 else []), *command, env=env
        )
        for n in range(workers)
    ]
    return [await p.wait() for p in processes]


async def hold_until_started(service: Service, workers: int) -> None:
    """Make the queue due only once every worker process has started (about a second of
    imports each, on a shared CPU), so the rate measured is the workers', not their start."""
    due = utcnow() + dt.timedelta(seconds=2 + workers)
    async with service.store.engine.begin() as conn:
        await conn.execute(update(deliveries).values(next_attempt_at=due))


async def fresh_postgres(admin_url: str) -> tuple[str, str]:
    """A new, empty database next to ``admin_url``'s: (its URL, its name)."""
    import asyncpg

    url = make_url(admin_url)
    name = f"dispatcher_bench_{os.getpid()}"
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(False), name


async def drop_postgres(admin_url: str, name: str) -> None:
    import asyncpg

    url = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    write_campaign(work / "campaigns")
    database, pg_name = f"sqlite+aiosqlite:///{work / 'bench.db'}", None
    if args.database == "postgres":
        database, pg_name = await fresh_postgres(args.postgres_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database,
        campaigns_dir=work / "campaigns",
    )
    server = await CountingServer.start()
    try:
        async with open_service(settings) as service:
            # Two email targets per appeal.
            await seed(service, args.messages // 2, ["email"])
        # Warm-up, not counted: the server's rate climbs over its first few thousand messages.
        for _ in range(3):
            await blast(server.port, args.messages, args.pool)
        await server.take()
        await blast(server.port, args.messages, args.pool)
        before = await server.take()
        async with open_service(settings) as service:
            await hold_until_started(service, args.workers)
        started = time.perf_counter()
        codes = await drain(settings, server.port, args.workers, args.pool, args.py_spy, args.slots)
        wall = time.perf_counter() - started
        ours = await server.take()
        await blast(server.port, args.messages, args.pool)
        after = await server.take()
        async with open_service(settings) as service:
            report = await campaign_report(service, CAMPAIGN)
    finally:
        await server.stop()
        if pg_name is not None:
            await drop_postgres(args.postgres_url, pg_name)
    limit = (rate(before) + rate(after)) / 2
    print(
        f"blast client ({args.pool} aiosmtplib connections): "
        f"{rate(before):.0f} and {rate(after):.0f} messages/s (before and after)"
    )
    print(
        f"dispatcher ({args.database}, {args.workers} worker process(es), pool {args.pool}): "
        f"{rate(ours):.0f} messages/s; workers exited {codes} after {wall:.1f} s wall"
    )
    recorded = report.channels["email"].delivered
    print(
        f"server took {ours['messages']} from the dispatcher; the database records "
        f"{recorded} delivered: " + ("MATCH" if recorded == ours["messages"] else "MISMATCH")
    )
    print(f"ratio dispatcher / blast client: {rate(ours) / limit:.2f}")
    return 0 if recorded == ours["messages"] and not any(codes) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "DISPATCHER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where a scratch database may be created and dropped",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--pool", type=int, default=8, help="SMTP connections per client")
    parser.add_argument(
        "--slots", type=int, help="deliveries a worker holds (default: the setting's)"
    )
    parser.add_argument("--py-spy", metavar="FILE", help="profile the first worker into FILE")
    # The blast client runs on the same loop as the workers (uvloop where installed).
    sys.exit(_run(main(parser.parse_args())))
