"""``make bench``: every scenario side by side with the limit measured in the same run.

Each scenario prints its rows of one markdown table as it finishes and writes
``<out>/<scenario>.json`` and ``<out>/<scenario>.png``; the whole table is written to
``<out>/results.md`` with the machine it ran on.

    .venv/bin/python -m bench                 # every scenario, full size
    .venv/bin/python -m bench --quick         # every scenario, under a minute
    .venv/bin/python -m bench --only limit,dispatcher
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_POSTGRES
from bench.suite import HEADER, RULE, Context, Row, machine, markdown_row, write_scenario

# In order: the limit first, so every later row has the limit of its own run.
SCENARIOS = ("limit", "dispatcher", "apprise", "queue_library", "intake", "backlog", "idle")


async def postgres_answers(url: str) -> bool:
    import asyncpg
    from sqlalchemy.engine import make_url

    try:
        conn = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False), timeout=5
        )
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def main(args: argparse.Namespace) -> int:
    chosen = [s for s in args.only.split(",") if s] if args.only else list(SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        print(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, out=out, postgres_url=args.postgres_url)
    ctx.postgres = await postgres_answers(args.postgres_url)
    if not ctx.postgres:
        print(f"no PostgreSQL at {args.postgres_url}: its cases are skipped")
    ran = machine()
    print(f"machine: {ran['cpus']} × {ran['cpu']}, Python {ran['python']}, {ran['system']}")
    print(HEADER + "\n" + RULE, flush=True)
    rows: list[Row] = []
    started = time.monotonic()
    for name in [s for s in SCENARIOS if s in chosen]:
        try:
            module = importlib.import_module(f"bench.scenarios.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"bench.scenarios.{name}":
                raise
            print(f"skipped {name}: bench/scenarios/{name}.py is not there yet", flush=True)
            continue
        found: list[Row] = await module.run(ctx)
        for row in found:
            print(markdown_row(row), flush=True)
        write_scenario(out, name, found)
        rows += found
    took = time.monotonic() - started
    (out / "results.md").write_text(
        f"Machine: {ran['cpus']} × {ran['cpu']}, Python {ran['python']}, {ran['system']}, "
        f"load average at the start {ran['load_average'][0]:.2f}; "
        f"{'--quick, ' if args.quick else ''}{took:.0f} s in all.\n\n"
        + "\n".join([HEADER, RULE, *map(markdown_row, rows)])
        + "\n",
        encoding="utf-8",
    )
    print(f"\n{len(rows)} rows in {took:.0f} s; table, JSON and plots in {out}/")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--only", default="", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--out", default="var/bench", help="where the JSON and plots go")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    from dispatcher.cli import _run

    sys.exit(_run(main(parser.parse_args())))
