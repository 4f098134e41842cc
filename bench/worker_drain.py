"""Benchmark: N one-step appeals, then `dispatcher worker --drain` against the sandbox.

Runs entirely on loopback. This process seeds the appeals through the real intake service
and hosts the sandbox servers; the worker is the real CLI in a second process. Prints
intake appeals/s, drain wall time and deliveries/s overall and per channel, and checks that
the sandbox received exactly what the report counts.

    .venv/bin/python bench/worker_drain.py --appeals 1000
    .venv/bin/python bench/worker_drain.py --appeals 1000 --channels email,twitter
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from dispatcher.runtime import open_service
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import submit_appeal
from dispatcher.service.reporting import campaign_report
from dispatcher.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "ua-bench"


def write_campaign(directory: Path) -> None:
    text = (ROOT / "config/campaigns/ua-61-21.toml").read_text(encoding="utf-8")
    deadline = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    text = re.sub(r'^id = ".*"$', f'id = "{CAMPAIGN}"', text, count=1, flags=re.M)
    text = re.sub(r"^deadline = .*$", f"deadline = {deadline}", text, count=1, flags=re.M)
    # Posts from the organisation's (sandbox) account: the benchmarks count X's posts too.
    text = re.sub(r'^x_mode = ".*"$', 'x_mode = "organisation"', text, count=1, flags=re.M)
    # No pacing of those posts (a few a minute by default): the benchmarks measure sending.
    text += "\n[pacing]\ntwitter_per_minute = 0\n"
    directory.mkdir(parents=True)
    (directory / f"{CAMPAIGN}.toml").write_text(text, encoding="utf-8")


async def seed(service: Service, appeals: int, channels: list[str]) -> None:
    """The appeals, one at a time through the real intake service."""
    started = time.perf_counter()
    deliveries = 0
    for n in range(appeals):
        result = await submit_appeal(
            service,
            AppealRequest(
                campaign_id=CAMPAIGN,
                supporter_name=f"Supporter {n}",
                supporter_email=f"supporter{n}@example.org",
                channels=channels,
                receipt=False,  # the benchmarks measure letters, not supporters' receipts
            ),
        )
        if isinstance(result, Rejected):
            raise result.first
        assert result.receipt is not None  # an operator's tool, as the request says
        deliveries += len(result.receipt.created)
    intake_seconds = time.perf_counter() - started
    print(
        f"intake: {appeals} appeals ({deliveries} deliveries) in {intake_seconds:.2f} s "
        f"= {appeals / intake_seconds:.0f} appeals/s (one at a time, SQLite)"
    )


async def drain(settings: Settings, sandbox: Sandbox, workers: int) -> tuple[list[int], float]:
    """``dispatcher worker --drain`` in ``workers`` processes; their exit codes and the time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_DATABASE_URL": settings.database_url,
            "DISPATCHER_CAMPAIGNS_DIR": str(settings.campaigns_dir),
            "DISPATCHER_SANDBOX__SMTP_PORT": str(sandbox.smtp_port),
            "DISPATCHER_SANDBOX__FAX_PORT": str(sandbox.fax_port),
            "DISPATCHER_SANDBOX__X_PORT": str(sandbox.x_port),
            "DISPATCHER_SANDBOX__FAX_TRANSMIT_SECONDS": "0.05",
            "DISPATCHER_WORKER__TWITTER_CONCURRENCY": "10",
            # Every appeal writes to the same inboxes: pacing would be all this measures.
            "DISPATCHER_EMAIL__PER_RECIPIENT_PER_MINUTE": "0",
        }
    )
    dispatcher = str(Path(sys.executable).with_name("dispatcher"))
    started = time.perf_counter()
    processes = [
        await asyncio.create_subprocess_exec(
            dispatcher, "worker", "--drain", env=env, stderr=asyncio.subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    codes = [await p.wait() for p in processes]
    return codes, time.perf_counter() - started


async def main(appeals: int, channels: list[str], workers: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    write_campaign(work / "campaigns")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{work / 'bench.db'}",
        campaigns_dir=work / "campaigns",
    )
    async with open_service(settings) as service:
        await seed(service, appeals, channels)
        async with Sandbox(work / "sandbox", fax_transmit_seconds=0.05) as sandbox:
            codes, drain_seconds = await drain(settings, sandbox, workers)
            received = sandbox.delivered_counts()
        report = await campaign_report(service, CAMPAIGN)
    counted = {c: v.delivered for c, v in report.channels.items()}
    print(
        f"drain: {workers} worker process(es) exited {codes} after {drain_seconds:.2f} s: "
        f"{report.actions} delivered = {report.actions / drain_seconds:.0f} deliveries/s"
    )
    for channel, count in counted.items():
        if count:
            print(f"  {channel}: {count} delivered")
    print(
        f"sandbox received {json.dumps(received)}; report counts {json.dumps(counted)}: "
        + ("MATCH" if received == counted else "MISMATCH")
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appeals", type=int, default=1000)
    parser.add_argument(
        "--channels",
        default="email,fax,twitter",
        help="comma-separated channels each appeal asks for",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    asyncio.run(main(args.appeals, args.channels.split(","), args.workers))
