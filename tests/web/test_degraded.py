"""The service when something it needs is broken, for real: the worker under its
supervisor (a schema it does not match stops it; it starts again with growing waits,
/healthz and /metrics say so, and intake refuses with 503 only once the supervisor has
given up), and a database that cannot write (503, nothing stored)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox
from dispatcher.settings import RetrySettings, SandboxSettings, WorkerSettings
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN, read_only, table_renamed
from tests.waiting import eventually
from tests.web.conftest import OPERATOR_TOKEN, context_of, web_settings

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, campaigns_dir: Path, **worker: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, str, Sandbox]]:
    """The app with its worker, sending email to a sandbox; yields (client, database URL,
    sandbox)."""
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        settings = web_settings(
            tmp_path,
            campaigns_dir,
            retry=RetrySettings(base_seconds=0.05, max_seconds=0.2, fast_tries=1),
            worker=WorkerSettings(idle_seconds=0.05, **worker),
            sandbox=SandboxSettings(
                smtp_port=sandbox.smtp_port, fax_port=9, x_port=9, directory=sandbox.directory
            ),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            # As an operator: /healthz tells only operators its details.
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t", headers=OPERATOR
            ) as client:
                yield client, context_of(app).settings.database_url, sandbox


async def health_until(client: httpx.AsyncClient, worker_starts: str) -> httpx.Response:
    async def says() -> httpx.Response | None:
        health = await client.get("/healthz")
        return health if health.json()["worker"].startswith(worker_starts) else None

    return await eventually(says, what=f"/healthz saying the worker is {worker_starts!r}")


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_a_stopped_worker_starts_again_and_health_and_metrics_say_so(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with serving(tmp_path, campaigns_dir) as (client, url, sandbox):
        healthy = await client.get("/healthz")
        assert healthy.status_code == 200
        assert healthy.json() == {
            "status": "ok",
            "database": "ok",
            "worker": "running",
            "worker_restarts": 0,
        }
        async with table_renamed(url, "pacing"):
            down = await health_until(client, "restarting in")
            assert down.status_code == 200 and down.json()["status"] == "degraded"
            assert "schema does not match this release (table pacing)" in down.json()["worker"]
            metrics = (await client.get("/metrics")).text
            assert metric(metrics, 'dispatcher_worker_state{state="restarting"}') == 1
            assert metric(metrics, 'dispatcher_worker_state{state="running"}') == 0
            # It will start again: appeals are still taken, and wait in the queue.
            body = {"supporter": {"name": "Ana Lima", "email": "ana@example.org"}}
            accepted = await client.post(APPEALS, json={**body, "channels": ["email"]})
            assert accepted.status_code == 202
        back = await health_until(client, "running")
        assert back.json()["status"] == "ok" and back.json()["worker_restarts"] >= 1
        metrics = (await client.get("/metrics")).text
        assert metric(metrics, "dispatcher_worker_restarts_total") >= 1
        assert metric(metrics, 'dispatcher_worker_state{state="running"}') == 1
        await eventually(lambda: len(sandbox.emails) == 2, what="both emails")
        assert sorted(m["To"].addresses[0].addr_spec for m in sandbox.emails) == [
            "chinaembpress_us@mfa.gov.cn",  # only ever to the sandbox on loopback
            "english@mail.gov.cn",
        ]


async def test_once_the_supervisor_gives_up_intake_refuses_with_retry_after(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with serving(tmp_path, campaigns_dir, restart_limit=1) as (client, url, _):
        async with table_renamed(url, "pacing"):
            failed = await health_until(client, "failed")
            assert failed.status_code == 503 and failed.json()["status"] == "unhealthy"
            assert failed.json()["worker"].startswith("failed (not restarted again): the ")
            body = {"supporter": {"name": "Ana Lima", "email": "ana@example.org"}}
            refused = await client.post(APPEALS, json=body)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "60"
        assert refused.json()["error"]["message"].startswith("appeals cannot be sent")
        report = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")
        assert report.json()["rehearsal"]["appeals"] == 0  # nothing half-stored


async def test_a_database_that_cannot_write_answers_503_and_stores_nothing(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The SQLite file turns read-only: a supporter gets 503 with Retry-After (their
    appeal was not saved, and they are told so), not a 500; afterwards all is well."""
    if shutil.which("chattr") is None:
        pytest.skip("makes the SQLite file immutable with chattr")
    body = {"supporter": {"name": "Ana Lima", "email": "ana@example.org"}}
    with read_only(tmp_path / "web.db"):
        refused = await client.post(APPEALS, json=body)
        health = await client.get("/healthz")
    assert refused.status_code == 503 and refused.headers["retry-after"] == "30"
    assert refused.json()["error"]["message"].startswith(
        "the service cannot reach its database at the moment; nothing was saved"
    )
    assert health.status_code == 200  # reading still works
    accepted = await client.post(APPEALS, json=body)
    assert accepted.status_code == 202
    report = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")
    assert report.json()["rehearsal"]["appeals"] == 1
