"""A separate `dispatcher worker` watched from outside: its /metrics and /healthz on
DISPATCHER_WORKER__METRICS_PORT, the real CLI in a subprocess against the sandbox."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from dispatcher.sandbox import Sandbox
from tests.conftest import OPEN_CAMPAIGN, free_port, process_env
from tests.unit.test_deployment import worker_healthcheck

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", fax_transmit_seconds=0.05) as box:
        yield box


def worker_env(
    database_url: str, campaigns_dir: Path, sandbox: Sandbox, port: int
) -> dict[str, str]:
    metrics = {"DISPATCHER_WORKER__METRICS_PORT": str(port)}
    return process_env(database_url, campaigns_dir, sandbox, **metrics)


async def dispatcher(env: dict[str, str], cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        DISPATCHER,
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def send_appeal(env: dict[str, str], cwd: Path) -> None:
    """Ana Lima's appeal to every target on every channel: five deliveries."""
    process = await dispatcher(
        env,
        cwd,
        "send",
        "--campaign",
        OPEN_CAMPAIGN,
        "--name",
        "Ana Lima",
        "--email",
        "ana@example.org",
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert b"stored with 5 deliveries" in stdout


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def delivered(found: Samples) -> float:
    """Outcomes the worker recorded as delivered."""
    return value(found, "dispatcher_worker_outcomes_total", status="delivered")


def officials_received(sandbox: Sandbox) -> dict[str, int]:
    """What reached the sandbox for the officials (the supporters' receipts left out)."""
    receipts = [m for m in sandbox.emails if "@example" in str(m["To"])]
    return dict(sandbox.delivered_counts(), email=len(sandbox.emails) - len(receipts))


async def until(
    client: httpx.AsyncClient, path: str, wanted: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """GET ``path`` until the answer is ``wanted`` (a connection refused is tried again:
    the worker may not be listening yet); fails after 30 s."""
    answer: httpx.Response | None = None
    for _ in range(300):
        try:
            answer = await client.get(path)
        except httpx.TransportError:
            answer = None
        if answer is not None and wanted(answer):
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path}: never as wanted; last answer {answer and answer.text}")


async def compose_healthcheck(port: int) -> int:
    """The exit status of docker-compose.yml's health check for the worker on ``port``."""
    check = await asyncio.create_subprocess_exec(
        *worker_healthcheck(port), stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(check.wait(), timeout=30)


async def stop(worker: asyncio.subprocess.Process) -> str:
    """SIGTERM, as compose stops it; its stderr."""
    worker.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == 0, stderr.decode()
    return stderr.decode()


async def test_the_worker_serves_health_and_counts_what_it_sends(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> None:
    port = free_port()
    env = worker_env(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", campaigns_dir, sandbox, port)
    worker = await dispatcher(env, tmp_path, "worker")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await until(client, "/healthz", lambda a: a.status_code == 200)
            assert health.json()["status"] == "ok" and health.json()["database"] == "ok"
            assert await compose_healthcheck(port) == 0
            before = samples((await client.get("/metrics")).text)
            assert value(before, "dispatcher_worker_handled_total") == 0
            assert value(before, "dispatcher_worker_claims_total") == 0
            assert value(before, "dispatcher_queue_depth") == 0

            await send_appeal(env, tmp_path)
            done = await until(client, "/metrics", lambda a: delivered(samples(a.text)) == 5)
            after = samples(done.text)
            health = (await client.get("/healthz")).json()
    finally:
        stderr = await stop(worker)
    # Each fax is recorded twice: accepted (awaiting confirmation), then delivered.
    outcomes = {
        status: value(after, "dispatcher_worker_outcomes_total", status=status)
        for status in ("delivered", "awaiting_confirmation", "failed", "queued")
    }
    assert outcomes == {"delivered": 5, "awaiting_confirmation": 2, "failed": 0, "queued": 0}
    assert value(after, "dispatcher_worker_handled_total") == 7
    assert 1 <= value(after, "dispatcher_worker_claims_total") <= 7
    assert 1 <= value(after, "dispatcher_worker_commits_total") <= 7
    assert value(after, "dispatcher_worker_stopped") == 0
    assert value(after, "dispatcher_worker_in_flight") == 0  # every send ended
    assert value(after, "dispatcher_queue_depth") == 0
    in_store = {
        channel: value(after, "dispatcher_deliveries", channel=channel, status="delivered")
        for channel in ("email", "fax", "twitter")
    }
    assert in_store == officials_received(sandbox) == {"email": 2, "fax": 2, "twitter": 1}
    attempts = sum(
        value(after, "dispatcher_attempt_seconds_count", channel=channel)
        for channel in ("email", "fax", "twitter")
    )
    assert attempts == 5  # the sends; a fax's confirmation is a look-up, not an attempt
    assert health["status"] == "ok" and health["handled"] == 7
    assert f"worker metrics on http://127.0.0.1:{port}/metrics, health on /healthz" in stderr
    assert "worker stopped: 7 handled" in stderr


async def test_without_the_port_the_worker_serves_nothing(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> None:
    port = free_port()
    env = worker_env(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", campaigns_dir, sandbox, port)
    del env["DISPATCHER_WORKER__METRICS_PORT"]
    worker = await dispatcher(env, tmp_path, "worker", "--drain")
    _, stderr = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == 0, stderr.decode()
    assert b"worker metrics" not in stderr


async def test_a_port_in_use_stops_the_worker_before_it_sends(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = worker_env(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", campaigns_dir, sandbox, port)
        worker = await dispatcher(env, tmp_path, "worker")
        _, stderr = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == 2
    [line] = [line for line in stderr.decode().splitlines() if line.startswith("error:")]
    assert line == (
        f"error: cannot serve the worker's metrics on 127.0.0.1:{port} (Address already in "
        "use): set DISPATCHER_WORKER__METRICS_PORT to a free port, or unset it to serve none"
    )
    assert b"started" not in stderr


async def set_connections(database_url: str, allowed: bool) -> None:
    """Let clients connect to the worker's PostgreSQL database, or not: refusing also ends
    every connection it has."""
    url = make_url(database_url)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database="postgres"
    )
    try:
        await admin.execute(
            f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                url.database,
            )
    finally:
        await admin.close()


async def test_the_worker_is_unhealthy_while_its_database_is_gone(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox, database_url: str
) -> None:
    """PostgreSQL refuses the worker's database and ends its connections: /healthz says
    503 and why, while the worker waits; once the database is back, 200 again, and the
    worker sends what was queued meanwhile."""
    if not database_url.startswith("postgresql"):
        pytest.skip("takes the database away with ALTER DATABASE … ALLOW_CONNECTIONS")
    port = free_port()
    env = worker_env(database_url, campaigns_dir, sandbox, port)
    worker = await dispatcher(env, tmp_path, "worker")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await until(client, "/healthz", lambda a: a.status_code == 200)
            await set_connections(database_url, allowed=False)
            try:
                gone = await until(client, "/healthz", lambda a: a.status_code == 503)
                unhealthy = await compose_healthcheck(port)
            finally:
                await set_connections(database_url, allowed=True)
            back = await until(client, "/healthz", lambda a: a.status_code == 200)
            await send_appeal(env, tmp_path)
            await until(client, "/metrics", lambda a: delivered(samples(a.text)) == 5)
    finally:
        await stop(worker)
    assert gone.json()["status"] == "unhealthy"
    assert unhealthy != 0  # compose marks the container unhealthy
    assert gone.json()["reason"].startswith("the database is ")
    assert back.json()["status"] == "ok"
    assert officials_received(sandbox) == {"email": 2, "fax": 2, "twitter": 1}
