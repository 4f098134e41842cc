"""``dispatcher serve --processes N``: N processes take appeals on one port, every appeal is
stored once, and the others end with the first (stopped, or killed)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx
import pytest

from dispatcher.sandbox import Sandbox
from tests.conftest import OPEN_CAMPAIGN, free_port, process_env
from tests.waiting import eventually

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def children(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(n) for n in listed.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def start(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox, port: int
) -> tuple[asyncio.subprocess.Process, int]:
    """``serve --processes 2``, answering; the other process's pid."""
    env = process_env(
        f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        campaigns_dir,
        sandbox,
        DISPATCHER_INTAKE__PER_IP_PER_MINUTE="0",
    )
    command = [DISPATCHER, "serve", "--processes", "2", "--no-worker", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *command, "--log-level", "warning", env=env, stderr=asyncio.subprocess.PIPE
    )

    def the_other() -> int | None:
        found = [p for p in children(process.pid) if "--shared-port" in _command_of(p)]
        return found[0] if found else None

    other = await eventually(the_other, what="the second process started", within=60)
    return process, other


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


async def submit(port: int, count: int) -> list[int]:
    """``count`` appeals, each over a connection of its own (spread over the processes)."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:

        async def answering() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(answering, what="serve answering", within=30)
        statuses = []
        for n in range(count):
            body = {"supporter": {"name": f"S {n}", "email": f"s{n}@example.org"}}
            answer = await http.post(f"/api/campaigns/{OPEN_CAMPAIGN}/appeals", json=body)
            statuses.append(answer.status_code)
        report = (await http.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    return [*statuses, report["appeals"] + report["rehearsal"]["appeals"]]


async def test_two_processes_take_appeals_on_one_port_and_stop_together(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> None:
    port = free_port()
    process, other = await start(tmp_path, campaigns_dir, sandbox, port)
    try:
        *statuses, stored = await submit(port, 30)
        assert statuses == [202] * 30 and stored == 30
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert "Traceback" not in stderr.decode()
        await eventually(lambda: not alive(other), what="the second process stopped too")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_other_processes_end_when_the_first_is_killed(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> None:
    process, other = await start(tmp_path, campaigns_dir, sandbox, free_port())
    process.kill()
    await process.wait()
    await eventually(lambda: not alive(other), what="the orphan ending", within=30)


async def test_more_processes_need_a_fixed_port(
    tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox
) -> None:
    env = process_env(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", campaigns_dir, sandbox)
    for args in (["--processes", "0"], ["--processes", "2", "--port", "0"]):
        process = await asyncio.create_subprocess_exec(
            DISPATCHER, "serve", *args, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await process.communicate()
        assert process.returncode == 2
        assert "--processes" in stderr.decode() and "Traceback" not in stderr.decode()
