"""Benchmark: the dispatcher's X posting rate as a fraction of what the X API server takes.

In one run, against one `dispatcher sandbox` process (its X API records each post with
its arrival time, as a server that stores them would): a blast client (aiohttp, the
client tweepy itself uses, with the same number of concurrent requests as the worker's
X slots) posting ready-made texts, then ``dispatcher worker --drain`` over N queued posts,
then the blast client again. Rates come from the server's arrival times (first to last),
and the queue falls due only once the worker has started.

    .venv/bin/python -m bench.x_ratio --posts 2000
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
from pathlib import Path

import aiohttp

from bench.email_ratio import hold_until_started
from bench.intake_http import free_port
from bench.worker_drain import CAMPAIGN, seed, write_campaign
from dispatcher.cli import _run
from dispatcher.runtime import open_service
from dispatcher.service.reporting import campaign_report
from dispatcher.settings import Settings

OAUTH = 'OAuth oauth_consumer_key="bench", oauth_signature="bench"'


class Posts:
    """The sandbox's tweets.jsonl, read in phases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def take(self) -> list[dt.datetime]:
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        fresh, self.seen = lines[self.seen :], len(lines)
        return [dt.datetime.fromisoformat(json.loads(line)["received_at"]) for line in fresh]


def rate(arrivals: list[dt.datetime]) -> float:
    span = (max(arrivals) - min(arrivals)).total_seconds() if len(arrivals) > 1 else 0
    return (len(arrivals) - 1) / span if span > 0 else 0.0


async def blast(base_url: str, count: int, concurrency: int, tag: str) -> None:
    texts = [f"@bench post {n} of blast {tag}" for n in range(count)]

    async def one_client(session: aiohttp.ClientSession) -> None:
        while texts:
            text = texts.pop()
            async with session.post(
                f"{base_url}/2/tweets", json={"text": text}, headers={"Authorization": OAUTH}
            ) as response:
                assert response.status == 201, await response.text()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one_client(session) for _ in range(concurrency)))


async def start_sandbox(directory: Path, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_SANDBOX__X_PORT": str(port),
            "DISPATCHER_SANDBOX__SMTP_PORT": str(free_port()),
            "DISPATCHER_SANDBOX__FAX_PORT": str(free_port()),
            "DISPATCHER_SANDBOX__DIRECTORY": str(directory),
        }
    )
    dispatcher = str(Path(sys.executable).with_name("dispatcher"))
    process = await asyncio.create_subprocess_exec(
        dispatcher, "sandbox", env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    await process.stdout.readline()  # "Sandbox running …": it listens
    return process


async def drain(settings: Settings, port: int, slots: int, profile: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_DATABASE_URL": settings.database_url,
            "DISPATCHER_CAMPAIGNS_DIR": str(settings.campaigns_dir),
            "DISPATCHER_TWITTER__API_BASE_URL": f"http://127.0.0.1:{port}",
            "DISPATCHER_TWITTER__CONSUMER_KEY": "bench",
            "DISPATCHER_TWITTER__CONSUMER_SECRET": "bench",
            "DISPATCHER_TWITTER__ACCESS_TOKEN": "bench",
            "DISPATCHER_TWITTER__ACCESS_TOKEN_SECRET": "bench",
            "DISPATCHER_WORKER__TWITTER_CONCURRENCY": str(slots),
        }
    )
    dispatcher = str(Path(sys.executable).with_name("dispatcher"))
    command = [dispatcher, "worker", "--drain"]
    if profile:  # py-spy samples the worker: collapsed stacks with their counts
        command = [
            "py-spy",
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "-o",
            profile,
            "--",
            *command,
        ]
    worker = await asyncio.create_subprocess_exec(*command, env=env)
    return await worker.wait()


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    write_campaign(work / "campaigns")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{work / 'bench.db'}",
        campaigns_dir=work / "campaigns",
    )
    port = free_port()
    server = await start_sandbox(work / "sandbox", port)
    base_url = f"http://127.0.0.1:{port}"
    posts = Posts(work / "sandbox" / "twitter" / "tweets.jsonl")
    try:
        async with open_service(settings) as service:
            await seed(service, args.posts, ["twitter"])  # one X target per appeal
        await blast(base_url, args.posts, args.slots, "warm-up")
        posts.take()
        await blast(base_url, args.posts, args.slots, "before")
        before = rate(posts.take())
        async with open_service(settings) as service:
            await hold_until_started(service, 1)
        started = time.perf_counter()
        code = await drain(settings, port, args.slots, args.py_spy)
        wall = time.perf_counter() - started
        ours = posts.take()
        await blast(base_url, args.posts, args.slots, "after")
        after = rate(posts.take())
        async with open_service(settings) as service:
            report = await campaign_report(service, CAMPAIGN)
    finally:
        server.terminate()
        await server.wait()
    print(f"blast client (aiohttp, {args.slots} concurrent): {before:.0f} and {after:.0f} posts/s")
    print(
        f"dispatcher (sqlite, 1 worker, {args.slots} X slots): {rate(ours):.0f} posts/s; "
        f"worker exited {code} after {wall:.1f} s wall"
    )
    recorded = report.channels["twitter"].delivered
    match = recorded == len(ours)
    print(
        f"server took {len(ours)} posts; the database records {recorded} delivered: "
        + ("MATCH" if match else "MISMATCH")
    )
    print(f"ratio dispatcher / blast client: {rate(ours) / ((before + after) / 2):.2f}")
    return 0 if match and code == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=8, help="concurrent posts (both sides)")
    parser.add_argument("--py-spy", metavar="FILE", help="profile the worker into FILE")
    sys.exit(_run(main(parser.parse_args())))
