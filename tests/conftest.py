"""Shared fixtures: a test campaign, stores on SQLite and PostgreSQL, the sandbox servers."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatcher.campaigns import CampaignCatalog
from dispatcher.models import AppealReceipt, Channel, ClaimedDelivery, DeliveryStatus
from dispatcher.retry import RetryPolicy
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import Accepted, submit_appeal
from dispatcher.settings import RetrySettings, SandboxSettings, Settings, WorkerSettings
from dispatcher.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CAMPAIGNS = ROOT / "config" / "campaigns"
OPEN_CAMPAIGN = "ua-open"
POSTGRES_URL = os.environ.get("DISPATCHER_TEST_POSTGRES_URL")
# Retries fast enough for tests: durable backoff of 0.05-0.2 s, two quick tries inside.
FAST_RETRY = RetrySettings(
    base_seconds=0.05,
    max_seconds=0.2,
    max_attempts=4,
    fast_tries=2,
    fast_wait_seconds=0,
    fast_max_seconds=5,
)


# The slow tests, and why: `pytest -m "not slow"` (the fast loop) leaves them out, and
# `make test` runs them too. A path ending in "/" takes its whole folder; "file::test" one
# test (every parameter). A test that uses a fixture of SLOW_FIXTURES is slow as well.
SLOW = {
    "tests/e2e/": "drives Chromium",
    "tests/acceptance/test_secrets.py": "runs `dispatcher serve` and `dispatcher demo`",
    "tests/acceptance/test_schema_fuzz.py": "runs `dispatcher serve`",
    "tests/acceptance/test_extras.py": "starts Python processes without the optional extras",
    "tests/integration/test_crash.py": "starts worker processes and kills them",
    "tests/integration/test_database_faults.py": "holds database faults for seconds",
    "tests/integration/test_fault_matrix.py": "waits out stalled and dripping connections",
    "tests/integration/test_retention.py::test_an_online_backup_taken_mid_run_restores_and_"
    "finishes_the_queue": "runs pg_dump and pg_restore while slow sends are in flight",
    "tests/integration/test_smtp_tls.py::test_the_access_token_is_blanked_from_every_log_line": (
        "starts Python processes"
    ),
    "tests/unit/test_error_log.py": "starts Python processes",
    "tests/unit/test_fax_font.py::test_a_worker_without_the_font_fails_the_attempt_saying_"
    "what_to_install": "runs `dispatcher send`, `worker` and `log` as processes",
}
SLOW_FIXTURES = {"cli": "runs the dispatcher command as processes (tests/acceptance/test_cli.py)"}


def is_slow(nodeid: str, fixtures: Iterable[str]) -> bool:
    path, _, rest = nodeid.partition("::")
    test = f"{path}::{rest.split('[')[0]}"
    named = any(path.startswith(key) if key.endswith("/") else key in (path, test) for key in SLOW)
    return named or not SLOW_FIXTURES.keys().isdisjoint(fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow(item.nodeid, getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def write_open_campaign(
    directory: Path, *, deadline: dt.date | None = None, x_mode: str = "organisation"
) -> Path:
    """The shipped UA 61.21 under the id ``ua-open`` with a deadline in the future. Its
    posts go out from the organisation's (sandbox) account unless ``x_mode`` says else:
    the tests of the pipeline count them; tests/…/test_x_accounts.py take the others."""
    text = (SHIPPED_CAMPAIGNS / "ua-61-21.toml").read_text(encoding="utf-8")
    deadline = deadline or dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    text = re.sub(r'^id = ".*"$', f'id = "{OPEN_CAMPAIGN}"', text, count=1, flags=re.M)
    text = re.sub(
        r"^deadline = .*$", f"deadline = {deadline.isoformat()}", text, count=1, flags=re.M
    )
    # Faxes go at once whatever the hour (tests/integration/test_fax_hours.py sets its own).
    text = re.sub(r"^fax_hours = .*\n", "", text, flags=re.M)
    text = re.sub(r'^x_mode = ".*"$', f'x_mode = "{x_mode}"', text, count=1, flags=re.M)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{OPEN_CAMPAIGN}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def campaigns_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "campaigns"
    directory.mkdir()
    shutil.copy(SHIPPED_CAMPAIGNS / "ua-61-21.toml", directory)
    write_open_campaign(directory)
    return directory


@pytest.fixture
def catalog(campaigns_dir: Path) -> CampaignCatalog:
    return CampaignCatalog.load(campaigns_dir)


async def _postgres_database() -> tuple[str, str]:
    import asyncpg
    from sqlalchemy.engine import make_url

    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    name = f"dispatcher_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False), name


async def _drop_postgres_database(name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each dialect (PostgreSQL needs DISPATCHER_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'dispatcher.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip("set DISPATCHER_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
    url, name = await _postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def service(store: Store, catalog: CampaignCatalog) -> Service:
    """The service layer over ``store`` and the test campaigns, with the tests' fast retries."""
    return Service(
        store=store,
        catalog=catalog,
        policy=RetryPolicy.from_settings(FAST_RETRY),
        poll_seconds=0.05,
    )


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'dispatcher.db'}")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", fax_transmit_seconds=0.05) as box:
        yield box


def settings_for(sandbox: Sandbox, *, database_url: str, campaigns_dir: Path) -> Settings:
    """Settings that send every channel to ``sandbox`` with retries fast enough for tests."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        campaigns_dir=campaigns_dir,
        retry=FAST_RETRY,
        worker=WorkerSettings(idle_seconds=0.05, lease_seconds=30),
        sandbox=SandboxSettings(
            host="127.0.0.1",
            # A channel the sandbox does not run points at port 9 (discard): nothing listens.
            smtp_port=sandbox.smtp_port if "email" in sandbox.channels else 9,
            fax_port=sandbox.fax_port if "fax" in sandbox.channels else 9,
            x_port=sandbox.x_port if "twitter" in sandbox.channels else 9,
            directory=sandbox.directory,
            fax_transmit_seconds=0.05,
        ),
    )


async def accepted(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> Accepted:
    """An appeal a test hands to intake expecting it taken: the answer, or the first
    problem raised (as the CLI says it), so that a refusal fails the test by name."""
    result = await submit_appeal(service, request, now=now)
    if isinstance(result, Rejected):
        raise result.first
    return result


async def submitted(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> AppealReceipt:
    """:func:`accepted`'s receipt from the store: what was stored or already counted
    (told to an operator's tool only, which ``request`` must come from)."""
    receipt = (await accepted(service, request, now=now)).receipt
    assert receipt is not None, f"an appeal via {request.via} is not told the receipt"
    return receipt


def claimed_delivery(**overrides: object) -> ClaimedDelivery:
    """A delivery as the store hands it to a worker: an email to Xi Jinping, due now."""
    base = ClaimedDelivery(
        id=1,
        appeal_id="appeal-1",
        campaign_id="ua-open",
        target_id="xi-jinping",
        target_name="Xi Jinping",
        salutation="Dear President Xi",
        channel=Channel.EMAIL,
        address="english@mail.gov.cn",
        status=DeliveryStatus.SENDING,
        attempts=0,
        provider_ref=None,
        expires_at=dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC),
        supporter_name="Ana Lima",
        supporter_email="ana@example.org",
        supporter_country="Brazil",
        language="en",
        subject="Release those detained",
        body="First paragraph.\n\nSecond paragraph.",
        tweet=None,
        earlier_outcome_unknown=False,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def table_renamed(database: Store | str, table: str) -> AsyncIterator[None]:
    """``table`` missing, as in a database another release migrated (or nobody did)."""
    if isinstance(database, Store):
        database = database.engine.url.render_as_string(hide_password=False)
    other = await Store.open(database, migrate_schema=False)
    try:
        async with other._writing() as conn:
            await conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_elsewhere"))
        try:
            yield
        finally:
            async with other._writing() as conn:
                await conn.execute(text(f"ALTER TABLE {table}_elsewhere RENAME TO {table}"))
    finally:
        await other.close()


@contextlib.contextmanager
def read_only(database: Path) -> Iterator[None]:
    """The database file and its write-ahead log made immutable (even root cannot write):
    connections already open get "disk I/O error", new ones "readonly database"."""
    files = [database, database.with_name(database.name + "-wal")]
    made = subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make the database file immutable here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=True)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_env(
    database_url: str, campaigns_dir: Path, sandbox: Sandbox, **settings: str
) -> dict[str, str]:
    """The environment of a ``dispatcher`` process a test starts: none of this machine's
    DISPATCHER_* settings, the test's database, campaigns and sandbox, quick retries and
    polls, wide lines; then ``settings`` (DISPATCHER_… names) on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_DATABASE_URL": database_url,
            "DISPATCHER_CAMPAIGNS_DIR": str(campaigns_dir),
            "DISPATCHER_SANDBOX__SMTP_PORT": str(sandbox.smtp_port),
            "DISPATCHER_SANDBOX__FAX_PORT": str(sandbox.fax_port),
            "DISPATCHER_SANDBOX__X_PORT": str(sandbox.x_port),
            "DISPATCHER_SANDBOX__FAX_TRANSMIT_SECONDS": "0.05",
            "DISPATCHER_RETRY__BASE_SECONDS": "0.05",
            "DISPATCHER_RETRY__MAX_SECONDS": "0.2",
            "DISPATCHER_WORKER__IDLE_SECONDS": "0.05",
            "COLUMNS": "200",
            **settings,
        }
    )
    return env
