"""The database's bad moments at full length, with appeals arriving throughout.

`dispatcher serve` (with its worker) and one more `dispatcher worker` share a SQLite file;
the sandbox runs in a process of its own. Appeals arrive over HTTP at ``--rate`` a second
(each without waiting for the one before), each to every official by email and on X.
Meanwhile this script holds the database's write lock for ``--lock-seconds`` (40), lets
it recover, then makes the file and its log immutable (read-only even for root) for
``--read-only-seconds`` (20). Then the appeals stop and the queue drains.

It checks what the issue asks: every appeal answered 202 is stored and every one of its
deliveries delivered; no answer other than 202 and 503 (the supporter is told to try
again, nothing was stored); every message the sandbox holds is there once, apart from
those the report marks as possible duplicates; both workers still run afterwards.

    .venv/bin/python -m bench.db_outage --lock-seconds 40 --read-only-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.common import DISPATCHER, free_port, serve_env, start_sandbox, wait_until_serving
from bench.worker_drain import CAMPAIGN, write_campaign

APPEALS = f"/api/campaigns/{CAMPAIGN}/appeals"


async def arrivals(client: httpx.AsyncClient, rate: float, stop: asyncio.Event) -> Counter[int]:
    """An appeal every 1/rate seconds until ``stop``, none waiting for another."""
    statuses: Counter[int] = Counter()

    async def one(n: int) -> None:
        body = {
            "supporter": {"name": f"Supporter {n}", "email": f"s{n}@example.org"},
            "channels": ["email", "twitter"],
        }
        try:
            response = await client.post(APPEALS, json=body)
            statuses[response.status_code] += 1
        except httpx.TransportError:
            statuses[0] += 1  # no answer at all: counted as a failure

    tasks: list[asyncio.Task[None]] = []
    started, n = time.monotonic(), 0
    while not stop.is_set():
        tasks.append(asyncio.create_task(one(n)))
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    return statuses


async def hold_write_lock(database: Path, seconds: float) -> None:
    def hold() -> None:
        connection = sqlite3.connect(database, isolation_level=None, timeout=60)
        try:
            connection.execute("BEGIN IMMEDIATE")
            time.sleep(seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    await asyncio.to_thread(hold)


async def read_only(database: Path, seconds: float) -> None:
    """The file and its log immutable (chattr +i): read-only even for root."""
    chattr = shutil.which("chattr")
    if chattr is None:
        raise SystemExit("chattr is needed to make the database file read-only")
    files = [str(database), f"{database}-wal"]

    async def run(flag: str) -> None:
        process = await asyncio.create_subprocess_exec(chattr, flag, *files)
        if await process.wait() != 0:
            raise SystemExit(f"chattr {flag} failed")

    await run("+i")
    try:
        await asyncio.sleep(seconds)
    finally:
        await run("-i")


def sandbox_holds(directory: Path) -> tuple[Counter[str], int]:
    """Copies of each email (by Message-ID) and the number of posts the sandbox recorded."""
    emails: Counter[str] = Counter()
    for path in directory.rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        emails[str(message["Message-ID"])] += 1
    tweets = directory / "twitter" / "tweets.jsonl"
    posts = len(tweets.read_text("utf-8").splitlines()) if tweets.exists() else 0
    return emails, posts


async def faults(args: argparse.Namespace, database: Path, say: Any) -> None:
    await asyncio.sleep(args.warm_up)
    say(f"holding the write lock for {args.lock_seconds:g} s")
    await hold_write_lock(database, args.lock_seconds)
    say(f"lock released; {args.recover_seconds:g} s to recover")
    await asyncio.sleep(args.recover_seconds)
    say(f"database file read-only for {args.read_only_seconds:g} s")
    await read_only(database, args.read_only_seconds)
    say(f"writable again; appeals go on for {args.recover_seconds:g} s")
    await asyncio.sleep(args.recover_seconds)


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-outage-"))
    write_campaign(work / "campaigns")
    env = serve_env(work)
    ports = {"smtp_port": free_port(), "fax_port": free_port(), "x_port": free_port()}
    for name, number in ports.items():
        env[f"DISPATCHER_SANDBOX__{name.upper()}"] = str(number)
    env["DISPATCHER_SANDBOX__EMBEDDED"] = "false"
    env["DISPATCHER_LOG_LEVEL"] = "warning"
    database = work / "serve.db"
    sandbox = await start_sandbox(work / "sandbox", None, **ports)
    port = free_port()
    log = (work / "processes.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        DISPATCHER, "serve", "--port", str(port), env=env, stdout=log, stderr=log
    )
    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {text}", flush=True)

    worker: asyncio.subprocess.Process | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            await wait_until_serving(client)
            worker = await asyncio.create_subprocess_exec(
                DISPATCHER, "worker", env=env, stdout=log, stderr=log
            )
            stop = asyncio.Event()
            load = asyncio.create_task(arrivals(client, args.rate, stop))
            await faults(args, database, say)
            stop.set()
            statuses = await load
            say(f"appeals stopped: answers {dict(statuses)}; draining")
            report = await drained(client)
            health = (await client.get("/healthz")).json()
        worker_alive = worker.returncode is None
    finally:
        for process in (worker, server, sandbox):
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()
        log.close()
    return verdict(statuses, report, health, worker_alive, work, say)


async def drained(client: httpx.AsyncClient) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for _ in range(600):
        report = (await client.get(f"/api/campaigns/{CAMPAIGN}/report")).json()
        if sum(c["pending"] for c in report["channels"].values()) == 0:
            break
        await asyncio.sleep(1)
    return report


def verdict(
    statuses: Counter[int],
    report: dict[str, Any],
    health: dict[str, Any],
    worker_alive: bool,
    work: Path,
    say: Any,
) -> int:
    emails, posts = sandbox_holds(work / "sandbox")
    accepted = statuses[202]
    delivered = {name: c["delivered"] for name, c in report["channels"].items()}
    extra_copies = sum(n - 1 for n in emails.values())
    say(f"report: {json.dumps({k: report[k] for k in ('appeals', 'actions')})}, {delivered}")
    say(
        f"sandbox: {len(emails)} emails ({extra_copies} extra copies), {posts} posts; "
        f"report marks {report['possible_duplicates']} possible duplicates"
    )
    say(f"serve /healthz: {health}; separate worker still running: {worker_alive}")
    checks = {
        "only 202 and 503 answered": set(statuses) <= {202, 503},
        "every accepted appeal stored": report["appeals"] == accepted,
        "every delivery delivered": delivered.get("email") == 2 * accepted
        and delivered.get("twitter") == accepted,
        "each email once, or marked": len(emails) == 2 * accepted
        and extra_copies <= report["possible_duplicates"],
        "each post once": posts == accepted,
        "both workers still run": worker_alive and health["worker"] == "running",
    }
    for name, ok in checks.items():
        say(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5, help="appeals per second")
    parser.add_argument("--warm-up", type=float, default=10, help="seconds before the lock")
    parser.add_argument("--lock-seconds", type=float, default=40)
    parser.add_argument("--recover-seconds", type=float, default=15)
    parser.add_argument("--read-only-seconds", type=float, default=20)
    sys.exit(asyncio.run(main(parser.parse_args())))
