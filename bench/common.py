"""What the ratio benchmarks share: a scratch database, worker processes, the sandbox process.

Each benchmark measures one channel's provider stand-in with a blast client, then the
dispatcher's workers, then the blast client again, in one run: a ratio, not a bare rate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.engine import make_url

from dispatcher.models import utcnow
from dispatcher.runtime import open_service
from dispatcher.settings import Settings
from dispatcher.store.schema import deliveries

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
CHECKOUT = Path(__file__).resolve().parent.parent
# Workers configured with a provider (the benchmarks' servers) refuse to start without
# one: made once per run, the same for every process of it and for the seeding service.
SECRET_KEY = secrets.token_urlsafe(32)
DEFAULT_POSTGRES = os.environ.get(
    "DISPATCHER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="a server where a scratch database may be created and dropped",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--py-spy", metavar="FILE", help="profile the first worker into FILE")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="the queue is due at once (no hold while the workers start): the wall-included "
        "ratio then counts their start-up, as the target does",
    )


class Scratch:
    """A working directory and an empty database (SQLite file, or a PostgreSQL database
    created for the run and dropped after it)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
        self.pg_name: str | None = None
        self.settings: Settings
        self.worker_cpu = 0.0  # CPU seconds (user + system) the worker processes used

    async def __aenter__(self) -> Scratch:
        database = f"sqlite+aiosqlite:///{self.work / 'bench.db'}"
        if self.args.database == "postgres":
            database, self.pg_name = await fresh_postgres(self.args.postgres_url)
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database,
            campaigns_dir=self.work / "campaigns",
            secret_key=SecretStr(SECRET_KEY),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pg_name is not None:
            await drop_postgres(self.args.postgres_url, self.pg_name)

    async def hold_until_started(self) -> None:
        """Make the queue due only once every worker process has started (about a second
        of imports each, on a shared CPU): the rate measured is the workers', not their
        start. Not with ``--wall``: there the start-up is part of what is measured."""
        if self.args.wall:
            return
        due = utcnow() + dt.timedelta(seconds=2 + self.args.workers)
        async with open_service(self.settings) as service, service.store.engine.begin() as conn:
            await conn.execute(update(deliveries).values(next_attempt_at=due))

    async def run_workers(self, extra_env: dict[str, str]) -> list[int]:
        """``dispatcher worker --drain`` in ``--workers`` processes; their exit codes.
        With ``--py-spy``, the first is sampled: collapsed stacks with their counts."""
        env = clean_env()
        env.update(
            {
                "DISPATCHER_DATABASE_URL": self.settings.database_url,
                "DISPATCHER_CAMPAIGNS_DIR": str(self.settings.campaigns_dir),
                "DISPATCHER_SANDBOX__DIRECTORY": str(self.work / "worker-sandbox"),
                # Required once a provider is configured (the links in receipts).
                "DISPATCHER_SECRET_KEY": SECRET_KEY,
                **extra_env,
            }
        )
        profile = self.args.py_spy
        spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw"]
        spy += ["--rate", "200", "-o", profile or "", "--"]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_before = used.ru_utime + used.ru_stime
        processes = [
            await asyncio.create_subprocess_exec(
                *(spy if profile and n == 0 else []), DISPATCHER, "worker", "--drain", env=env
            )
            for n in range(self.args.workers)
        ]
        codes = [await p.wait() for p in processes]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.worker_cpu = used.ru_utime + used.ru_stime - cpu_before
        return codes

    def describe(self) -> str:
        return (
            f"{self.args.database}, {self.args.workers} worker process(es), "
            f"{self.worker_cpu:.1f} CPU s in all"
        )


def print_result(
    *,
    unit: str,
    blast: str,
    rates: tuple[float, float, float],
    dispatcher: str,
    codes: list[int],
    wall: float,
    took: int,
    recorded: int,
) -> int:
    """The run's lines: both blast rates, ours, what the server took against what the
    database records, and the ratio; the exit status (0 when they match)."""
    before, ours, after = rates
    print(f"blast client ({blast}): {before:.0f} and {after:.0f} {unit}/s (before and after)")
    print(
        f"dispatcher ({dispatcher}): {ours:.0f} {unit}/s; "
        f"workers exited {codes} after {wall:.1f} s wall"
    )
    match = recorded == took
    print(
        f"the server took {took}; the database records {recorded} delivered: "
        + ("MATCH" if match else "MISMATCH")
    )
    limit = (before + after) / 2
    print(f"ratio dispatcher / blast client: {ours / limit:.2f}")
    # Deliveries over the time from launching the workers to their exit: start-up counts
    # (without --wall it also counts the hold before the queue falls due).
    print(f"wall-included ratio: {took / wall / limit:.2f} ({took / wall:.0f} {unit}/s)")
    return 0 if match and not any(codes) else 1


async def wait_until_serving(client: httpx.AsyncClient, seconds: float = 30) -> None:
    """Until ``GET /healthz`` answers 200 (a `serve` process has started)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{client.base_url} did not start serving in {seconds:g} s")


def serve_env(work: Path) -> dict[str, str]:
    """The environment of a `dispatcher serve` under load: SQLite in ``work``, the
    campaigns in ``work/campaigns``, no intake or pacing limits (every appeal comes from
    this machine and writes to the same officials), quick fax and X sandboxes, and free
    sandbox ports."""
    env = clean_env()
    env.update(
        {
            "DISPATCHER_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'serve.db'}",
            "DISPATCHER_CAMPAIGNS_DIR": str(work / "campaigns"),
            "DISPATCHER_INTAKE__PER_IP_PER_MINUTE": "0",
            "DISPATCHER_INTAKE__PER_EMAIL_PER_HOUR": "0",
            "DISPATCHER_EMAIL__PER_RECIPIENT_PER_MINUTE": "0",
            "DISPATCHER_SANDBOX__DIRECTORY": str(work / "sandbox"),
            "DISPATCHER_SANDBOX__FAX_TRANSMIT_SECONDS": "0.02",
            "DISPATCHER_FAX__POLL_SECONDS": "0.2",
            "DISPATCHER_WORKER__TWITTER_CONCURRENCY": "8",
        }
    )
    for name in ("SMTP", "FAX", "X"):
        env[f"DISPATCHER_SANDBOX__{name}_PORT"] = str(free_port())
    return env


def clean_env() -> dict[str, str]:
    """This process's environment without any DISPATCHER_ setting but the log's (a run
    may compare the worker with and without its info lines), with this checkout first on
    the path: the processes run the same code as the benchmark (a git worktree's, not
    the one the virtualenv was installed from)."""
    kept = {"DISPATCHER_LOG_LEVEL", "DISPATCHER_LOG_FORMAT"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_") or k in kept}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    return env


async def start_sandbox(
    directory: Path, extra_env: dict[str, str] | None = None, **ports: int
) -> asyncio.subprocess.Process:
    """``dispatcher sandbox`` in its own process, listening on the given ports
    (``smtp_port``, ``fax_port``, ``x_port``; free ones for the rest)."""
    env = clean_env()
    for name in ("smtp_port", "fax_port", "x_port"):
        env[f"DISPATCHER_SANDBOX__{name.upper()}"] = str(ports.get(name) or free_port())
    env["DISPATCHER_SANDBOX__DIRECTORY"] = str(directory)
    env.update(extra_env or {})
    process = await asyncio.create_subprocess_exec(
        DISPATCHER, "sandbox", env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    await process.stdout.readline()  # "Sandbox running …": it listens
    return process


def arrival_rate(arrivals: list[dt.datetime]) -> float:
    """Arrivals per second, first to last."""
    span = (max(arrivals) - min(arrivals)).total_seconds() if len(arrivals) > 1 else 0
    return (len(arrivals) - 1) / span if span > 0 else 0.0


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
