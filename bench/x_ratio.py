"""Benchmark: the dispatcher's X posting rate as a fraction of what the X API server takes.

In one run, against one `dispatcher sandbox` process (its X API records each post with
its arrival time, as a server that stores them would): a blast client (aiohttp, the
client tweepy itself uses, each post signed with OAuth 1.0a, with the same number of
concurrent requests as the worker's X slots) posting ready-made texts, then
``dispatcher worker --drain`` over N queued posts, then the blast client again. Rates
come from the server's arrival times (first to last), and the queue falls due only once
the worker has started.

    .venv/bin/python -m bench.x_ratio --posts 2000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path

import aiohttp
import oauthlib.oauth1

from bench.common import (
    Scratch,
    add_database_options,
    arrival_rate,
    free_port,
    print_result,
    start_sandbox,
)
from bench.worker_drain import CAMPAIGN, seed, write_campaign
from dispatcher.cli import _run
from dispatcher.runtime import open_service
from dispatcher.service.reporting import campaign_report


class Posts:
    """The sandbox's tweets.jsonl, read in phases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def take(self) -> list[dt.datetime]:
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        fresh, self.seen = lines[self.seen :], len(lines)
        return [dt.datetime.fromisoformat(json.loads(line)["received_at"]) for line in fresh]


async def blast(base_url: str, count: int, concurrency: int, tag: str) -> None:
    """``count`` posts, ``concurrency`` at a time, each signed with OAuth 1.0a (HMAC-SHA1,
    oauthlib: what X verifies on every post, and what tweepy uses) but without tweepy."""
    texts = [f"@bench post {n} of blast {tag}" for n in range(count)]
    signer = oauthlib.oauth1.Client("bench", "bench", "bench", "bench")
    url = f"{base_url}/2/tweets"

    async def one_client(session: aiohttp.ClientSession) -> None:
        while texts:
            text = texts.pop()
            _, headers, _ = signer.sign(url, "POST", headers={"Content-Type": "application/json"})
            async with session.post(url, json={"text": text}, headers=headers) as response:
                assert response.status == 201, await response.text()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one_client(session) for _ in range(concurrency)))


async def main(args: argparse.Namespace) -> int:
    async with Scratch(args) as scratch:
        write_campaign(scratch.settings.campaigns_dir)
        port = free_port()
        server = await start_sandbox(scratch.work / "sandbox", x_port=port)
        base_url = f"http://127.0.0.1:{port}"
        posts = Posts(scratch.work / "sandbox" / "twitter" / "tweets.jsonl")
        try:
            async with open_service(scratch.settings) as service:
                await seed(service, args.posts, ["twitter"])  # one X target per appeal
            await blast(base_url, args.posts, args.slots, "warm-up")
            posts.take()
            await blast(base_url, args.posts, args.slots, "before")
            before = arrival_rate(posts.take())
            await scratch.hold_until_started()
            started = time.perf_counter()
            codes = await scratch.run_workers(
                {
                    "DISPATCHER_TWITTER__API_BASE_URL": base_url,
                    "DISPATCHER_TWITTER__CONSUMER_KEY": "bench",
                    "DISPATCHER_TWITTER__CONSUMER_SECRET": "bench",
                    "DISPATCHER_TWITTER__ACCESS_TOKEN": "bench",
                    "DISPATCHER_TWITTER__ACCESS_TOKEN_SECRET": "bench",
                    "DISPATCHER_WORKER__TWITTER_CONCURRENCY": str(args.slots),
                    # The organisation's account posts one a minute unless told otherwise:
                    # a pace far above this run's keeps the pacing path without measuring it.
                    "DISPATCHER_TWITTER__PER_MINUTE": "1000000",
                }
            )
            wall = time.perf_counter() - started
            ours = posts.take()
            await blast(base_url, args.posts, args.slots, "after")
            after = arrival_rate(posts.take())
            async with open_service(scratch.settings) as service:
                report = await campaign_report(service, CAMPAIGN)
        finally:
            server.terminate()
            await server.wait()
    return print_result(
        unit="posts",
        blast=f"aiohttp, {args.slots} concurrent, OAuth 1.0a",
        rates=(before, arrival_rate(ours), after),
        dispatcher=f"{scratch.describe()}, {args.slots} X slots",
        codes=codes,
        wall=wall,
        took=len(ours),
        recorded=report.channels["twitter"].delivered,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_options(parser)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=8, help="concurrent posts (both sides)")
    sys.exit(_run(main(parser.parse_args())))
