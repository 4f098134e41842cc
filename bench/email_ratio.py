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
import json
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib

from bench.common import Scratch, add_database_options, print_result
from bench.worker_drain import CAMPAIGN, seed, write_campaign
from dispatcher.cli import _run
from dispatcher.runtime import open_service
from dispatcher.service.reporting import campaign_report

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
            limit=2**24,  # a take's line lists every arrival time
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


async def main(args: argparse.Namespace) -> int:
    server = await CountingServer.start()
    try:
        async with Scratch(args) as scratch:
            write_campaign(scratch.settings.campaigns_dir)
            async with open_service(scratch.settings) as service:
                await seed(service, args.messages // 2, ["email"])  # two email targets each
            # Warm-up, not counted: the server's rate climbs over its first few thousand.
            for _ in range(3):
                await blast(server.port, args.messages, args.pool)
            await server.take()
            await blast(server.port, args.messages, args.pool)
            before = await server.take()
            await scratch.hold_until_started()
            started = time.perf_counter()
            codes = await scratch.run_workers(worker_env(server.port, args.pool, args.slots))
            wall = time.perf_counter() - started
            ours = await server.take()
            await blast(server.port, args.messages, args.pool)
            after = await server.take()
            async with open_service(scratch.settings) as service:
                report = await campaign_report(service, CAMPAIGN)
    finally:
        await server.stop()
    return print_result(
        unit="messages",
        blast=f"{args.pool} aiosmtplib connections",
        rates=(rate(before), rate(ours), rate(after)),
        dispatcher=f"{scratch.describe()}, pool {args.pool}",
        codes=codes,
        wall=wall,
        took=ours["messages"],
        recorded=report.channels["email"].delivered,
    )


def worker_env(port: int, pool: int, slots: int | None) -> dict[str, str]:
    env = {
        "DISPATCHER_EMAIL__HOST": "127.0.0.1",
        "DISPATCHER_EMAIL__PORT": str(port),
        "DISPATCHER_EMAIL__START_TLS": "false",
        "DISPATCHER_EMAIL__POOL_SIZE": str(pool),
        # Every appeal writes to the same two inboxes: per-recipient pacing (30 a minute
        # by default) would measure the pacing, not the send path.
        "DISPATCHER_EMAIL__PER_RECIPIENT_PER_MINUTE": "0",
    }
    if slots:
        env["DISPATCHER_WORKER__EMAIL_CONCURRENCY"] = str(slots)
    return env


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_options(parser)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--pool", type=int, default=8, help="SMTP connections per client")
    parser.add_argument(
        "--slots", type=int, help="deliveries a worker holds (default: the setting's)"
    )
    # The blast client runs on the same loop as the workers (uvloop where installed).
    sys.exit(_run(main(parser.parse_args())))
