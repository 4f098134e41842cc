"""Benchmark: POST /api/campaigns/{id}/appeals against `dispatcher serve --no-worker` on SQLite.

The server is the real CLI in its own process; this process is the load generator (an
async httpx client with N concurrent connections on loopback). Each request is a distinct
supporter, so every one is stored (supporter, appeal, five deliveries in one transaction).
Prints appeals/s and the p50/p90/p99 latency, and checks the report counts every appeal.
With ``--worker`` the server also sends (its embedded worker and sandbox) while the burst
arrives, and the run waits for the queue to drain and checks every delivery went out.

    .venv/bin/python -m bench.intake_http --requests 2000 --concurrency 16
    .venv/bin/python -m bench.intake_http --requests 10000 --worker --channels email,twitter
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, serve_env, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "ua-bench"


async def main(requests: int, concurrency: int, worker: bool, channels: list[str]) -> int:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-intake-bench-"))
    write_campaign(work / "campaigns")
    port = free_port()
    server = await start_server(serve_env(work), port, worker)
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            await wait_until_serving(client)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(requests):
                queue.put_nowait(n)
            latencies: list[float] = []
            statuses: dict[int, int] = {}

            async def user() -> None:
                while not queue.empty():
                    n = queue.get_nowait()
                    body: dict[str, Any] = {
                        "supporter": {"name": f"Supporter {n}", "email": f"s{n}@example.org"}
                    }
                    if channels:
                        body["channels"] = channels
                    started = time.perf_counter()
                    response = await client.post(f"/api/campaigns/{CAMPAIGN}/appeals", json=body)
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(user() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            report = await drained(client) if worker else await report_of(client)
    finally:
        server.terminate()
        await server.wait()
    quantiles = statistics.quantiles(sorted(latencies), n=100)
    print(
        f"{requests} appeals over {concurrency} connections in {elapsed:.2f} s = "
        f"{requests / elapsed:.0f} appeals/s; statuses {statuses}"
    )
    print(
        f"latency p50 {quantiles[49] * 1000:.1f} ms, p90 {quantiles[89] * 1000:.1f} ms, "
        f"p99 {quantiles[98] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    # Appeals with a delivery to a provider, and those rehearsed on the sandbox: all.
    stored = report["appeals"] + report["rehearsal"]["appeals"]
    print(f"report: {stored} appeals stored" + (" (all)" if stored == requests else " MISMATCH"))
    ok = stored == requests and set(statuses) == {202}
    if worker:
        pending = sum(c["pending"] for c in report["channels"].values())
        print(f"after the drain: {report['actions']} delivered, {pending} pending")
        ok = ok and pending == 0 and report["actions"] == per_appeal(report) * requests
    return 0 if ok else 1


def write_campaign(directory: Path) -> None:
    """UA 61.21 as CAMPAIGN, its deadline a month away."""
    directory.mkdir(parents=True)
    text = (ROOT / "config/campaigns/ua-61-21.toml").read_text(encoding="utf-8")
    deadline = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    text = re.sub(r'^id = ".*"$', f'id = "{CAMPAIGN}"', text, count=1, flags=re.M)
    text = re.sub(r"^deadline = .*$", f"deadline = {deadline}", text, count=1, flags=re.M)
    (directory / f"{CAMPAIGN}.toml").write_text(text, encoding="utf-8")


async def start_server(env: dict[str, str], port: int, worker: bool) -> asyncio.subprocess.Process:
    """`dispatcher serve` (with its worker or not) on ``port``."""
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("dispatcher")),
        "serve",
        *([] if worker else ["--no-worker"]),
        "--port",
        str(port),
        "--log-level",
        "warning",
        env=env,
        stderr=asyncio.subprocess.DEVNULL,
    )


def per_appeal(report: dict[str, Any]) -> int:
    """Deliveries per appeal, from the report's counts (every appeal asks the same)."""
    total = sum(sum(c.values()) for c in report["channels"].values())
    return int(total) // max(1, int(report["appeals"]))


async def report_of(client: httpx.AsyncClient) -> dict[str, Any]:
    report: dict[str, Any] = (await client.get(f"/api/campaigns/{CAMPAIGN}/report")).json()
    return report


async def drained(client: httpx.AsyncClient, seconds: float = 900) -> dict[str, Any]:
    """The report once nothing is pending (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        report = await report_of(client)
        pending = sum(c["pending"] for c in report["channels"].values())
        if not pending or time.monotonic() > deadline:
            return report
        await asyncio.sleep(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--worker", action="store_true", help="send while the burst arrives")
    parser.add_argument(
        "--channels",
        default="",
        help="comma-separated channels each appeal asks for (default: every one; fax lines "
        "take one fax at a time, so a fax burst drains for a long time)",
    )
    args = parser.parse_args()
    channels = [c for c in args.channels.split(",") if c]
    sys.exit(asyncio.run(main(args.requests, args.concurrency, args.worker, channels)))
