"""Soak: a steady stream of appeals over HTTP for a long time, memory sampled throughout.

`dispatcher serve` (with its embedded worker) on SQLite takes appeals at a steady rate
from this process for ``--minutes``, each to every official by email and on X; every
``--every`` seconds the resident memory (RSS) of the serve process is sampled. The
sandbox runs in a process of its own (it keeps everything it receives in memory, which
is not what this measures). At the end the queue drains, and the run
checks that every appeal was stored and every delivery delivered. Writes the samples as
CSV and as an SVG chart (what the README shows), and prints the first and last samples
and the growth over the second half (a leak grows steadily; a warm-up does not).

    .venv/bin/python -m bench.soak --minutes 30 --rate 10 --out docs/soak
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import DISPATCHER, free_port, serve_env, start_sandbox, wait_until_serving
from bench.worker_drain import CAMPAIGN, write_campaign


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def svg_chart(samples: list[tuple[float, float]], title: str) -> str:
    """A small line chart of (minutes, MiB): no plotting library needed."""
    width, height, pad = 640, 240, 40
    top = max(m for _, m in samples) * 1.2 or 1
    end = max(t for t, _ in samples) or 1
    points = " ".join(
        f"{pad + t / end * (width - 2 * pad):.1f},{height - pad - m / top * (height - 2 * pad):.1f}"
        for t, m in samples
    )
    ticks = "".join(
        f'<text x="{pad - 6}" y="{height - pad - f * (height - 2 * pad) + 4:.0f}" '
        f'text-anchor="end" font-size="11">{top * f:.0f}</text>'
        for f in (0, 0.5, 1)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="13">{title}</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="#888"/>{ticks}'
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
        f"minutes (0 to {end:.0f}); MiB resident</text>"
        f'<polyline points="{points}" fill="none" stroke="#0b5" stroke-width="2"/></svg>\n'
    )


async def load(client: httpx.AsyncClient, rate: float, seconds: float) -> dict[int, int]:
    """One appeal every 1/rate seconds for ``seconds``; counts of each answer's status."""
    statuses: dict[int, int] = {}
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        body = {
            "supporter": {"name": f"Supporter {n}", "email": f"s{n}@example.org"},
            "channels": ["email", "twitter"],
        }
        response = await client.post(f"/api/campaigns/{CAMPAIGN}/appeals", json=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    return statuses


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="dispatcher-soak-"))
    write_campaign(work / "campaigns")
    port = free_port()
    env = serve_env(work)
    ports = {"smtp_port": free_port(), "fax_port": free_port(), "x_port": free_port()}
    for name, number in ports.items():
        env[f"DISPATCHER_SANDBOX__{name.upper()}"] = str(number)
    env["DISPATCHER_SANDBOX__EMBEDDED"] = "false"
    sandbox = await start_sandbox(work / "sandbox", None, **ports)
    server = await asyncio.create_subprocess_exec(
        DISPATCHER,
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    samples: list[tuple[float, float]] = []
    started = time.monotonic()

    progress = Path(args.out).with_suffix(".csv")
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("minutes,rss_mib\n", "utf-8")

    async def sample() -> None:
        while True:
            samples.append(((time.monotonic() - started) / 60, rss_mib(server.pid)))
            with progress.open("a", encoding="utf-8") as out:  # kept if the run dies
                out.write(f"{samples[-1][0]:.2f},{samples[-1][1]:.1f}\n")
            await asyncio.sleep(args.every)

    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await wait_until_serving(client)
            sampler = asyncio.create_task(sample())
            statuses = await load(client, args.rate, args.minutes * 60)
            report: dict[str, object] = {}
            for _ in range(600):  # the queue drains
                report = (await client.get(f"/api/campaigns/{CAMPAIGN}/report")).json()
                pending = sum(c["pending"] for c in report["channels"].values())  # type: ignore[attr-defined]
                if not pending:
                    break
                await asyncio.sleep(1)
            sampler.cancel()
    finally:
        server.terminate()
        await server.wait()
        sandbox.terminate()
        await sandbox.wait()
    return summarise(args, samples, statuses, report)


def summarise(
    args: argparse.Namespace,
    samples: list[tuple[float, float]],
    statuses: dict[int, int],
    report: dict[str, object],
) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".csv").write_text(
        "minutes,rss_mib\n" + "".join(f"{t:.2f},{m:.1f}\n" for t, m in samples), "utf-8"
    )
    title = f"dispatcher serve: resident memory over a {args.minutes:g}-minute soak"
    out.with_suffix(".svg").write_text(svg_chart(samples, title), "utf-8")
    half = [m for t, m in samples if t >= samples[-1][0] / 2]
    accepted = statuses.get(202, 0)
    print(
        f"answers: {statuses}; report: {report.get('appeals')} appeals, "
        f"{report.get('actions')} actions"
    )
    print(
        f"RSS: {samples[0][1]:.0f} MiB at start, {samples[-1][1]:.0f} MiB at the end; "
        f"second half {min(half):.0f}–{max(half):.0f} MiB ({len(samples)} samples)"
    )
    print(f"written: {out.with_suffix('.csv')} and {out.with_suffix('.svg')}")
    every_stored = report.get("appeals") == accepted and set(statuses) == {202}
    return 0 if every_stored else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=10, help="appeals per second")
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    parser.add_argument("--out", default="docs/soak", help="path of the .csv and .svg")
    sys.exit(asyncio.run(main(parser.parse_args())))
