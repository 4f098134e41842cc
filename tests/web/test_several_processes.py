"""Several `serve` processes are one service: two apps over one database (as two processes
behind a load balancer would be) share the intake limits and accept each other's forms."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from dispatcher.settings import IntakeSettings
from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import running_app, web_settings
from tests.web.test_pages import PAGE, csrf_of, supporter_form

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"


@contextlib.asynccontextmanager
async def two_processes(
    tmp_path: Path, campaigns_dir: Path, database_url: str, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = web_settings(tmp_path, campaigns_dir, database_url=database_url, **overrides)
    async with running_app(settings) as (_, one), running_app(settings) as (_, two):
        yield one, two


def appeal(n: int) -> dict[str, Any]:
    return {
        "supporter": {"name": f"Supporter {n}", "email": f"s{n}@example.org"},
        "targets": ["xi-jinping"],
        "channels": ["email"],
    }


async def test_intake_limits_count_the_hits_of_every_process(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    limits = IntakeSettings(per_ip_per_minute=3, per_email_per_hour=0)
    async with two_processes(tmp_path, campaigns_dir, database_url, intake=limits) as (a, b):
        codes = [
            (await (a if n % 2 else b).post(APPEALS, json=appeal(n))).status_code for n in range(4)
        ]
    assert codes == [202, 202, 202, 429]


async def test_a_form_rendered_by_one_process_is_accepted_by_another(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    secret = "a-long-random-secret-shared-by-every-process"
    async with two_processes(tmp_path, campaigns_dir, database_url, secret_key=secret) as (a, b):
        page = await a.get(PAGE)
        b.cookies.update(a.cookies)
        sent = await b.post(PAGE, data=supporter_form(csrf_of(page)))
    assert sent.status_code == 303
    assert sent.headers["location"].startswith(f"/c/{OPEN_CAMPAIGN}/sent")
    # Without a shared key each process signs with its own, and refuses the other's forms.
    async with two_processes(tmp_path, campaigns_dir, database_url) as (a, b):
        page = await a.get(PAGE)
        b.cookies.update(a.cookies)
        refused = await b.post(PAGE, data=supporter_form(csrf_of(page), email="bo@example.org"))
    assert refused.status_code == 403
