"""`purge`: a closed campaign's supporters' personal data goes, its report stays the same
to the byte, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from dispatcher.campaigns import CampaignCatalog
from dispatcher.models import (
    AttemptOutcome,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    NewAppeal,
    NewDelivery,
    Settlement,
)
from dispatcher.retry import RetryPolicy
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import ErrorKind, Service, ServiceError
from dispatcher.service.reporting import campaign_report
from dispatcher.service.retention import backup, purge_campaign
from dispatcher.service.validation import AppealRequest
from dispatcher.store import Store
from tests.conftest import (
    FAST_RETRY,
    OPEN_CAMPAIGN,
    _drop_postgres_database,
    _postgres_database,
    settings_for,
    submitted,
)
from tests.waiting import eventually

CLOSED = "ua-61-21"
MESSAGE_ID = re.compile(r"<delivery-(\d+)\.")
LONG_AGO = dt.datetime(2021, 7, 1, tzinfo=dt.UTC)
PEOPLE = [
    ("Ana Lima", "ana@example.org", "Brazil"),
    ("Bo Chen", "bo@example.org", "Canada"),
    ("Cy Okafor", "cy@example.org", "Nigeria"),
]


def appeal(name: str, email: str, country: str, campaign: str = CLOSED) -> NewAppeal:
    return NewAppeal(
        campaign_id=campaign,
        supporter_name=name,
        supporter_email=email,
        supporter_country=country,
        language="en",
        subject="Release them",
        body=f"A letter in the words of {name}",
        own_message=True,
        tweet=f"Free them now, says {name}",
        expires_at=dt.datetime(2021, 9, 11, tzinfo=dt.UTC),
        idempotency_key=f"key-of-{email}",
    )


WANTED = [
    NewDelivery("xi-jinping", "Xi Jinping", "Dear President", Channel.EMAIL, "a@gov.example"),
    NewDelivery("cui-tiankai", "Cui Tiankai", "Dear Ambassador", Channel.FAX, "+12024952138"),
]


async def seed(service: Service) -> None:
    """Three supporters in the closed campaign (all settled, one delivery failed), one of
    them also in the open one, a fourth still pending, and two self-reported actions."""
    store = service.store
    for name, email, country in PEOPLE:
        await store.create_appeal(appeal(name, email, country), WANTED, now=LONG_AGO)
    first = True
    # One fax in flight per number: claim and settle until nothing is due.
    while claimed := await store.claim_due_deliveries(
        "w", limit=10, lease_seconds=60, now=LONG_AGO
    ):
        updates = []
        for d in claimed:
            failed, first = first, False
            updates.append(
                DeliveryUpdate(
                    d.id,
                    DeliveryStatus.FAILED if failed else DeliveryStatus.DELIVERED,
                    attempt_outcome=AttemptOutcome.PERMANENT
                    if failed
                    else AttemptOutcome.DELIVERED,
                    attempt=d.attempts,
                )
            )
        await store.record_outcomes("w", updates, now=LONG_AGO)
    await store.create_appeal(appeal("Di Park", "di@example.org", "Korea"), WANTED, now=LONG_AGO)
    await store.create_appeal(appeal(*PEOPLE[0], campaign=OPEN_CAMPAIGN), WANTED[:1])
    for name, email, _ in PEOPLE[:2]:
        await store.record_reported_action(
            campaign_id=CLOSED,
            target_id="xi-jinping",
            kind="call",
            supporter_name=name,
            supporter_email=email,
            now=LONG_AGO,
        )


async def everything_stored(service: Service) -> str:
    """Every row of every table with personal data, as text."""
    tables = ("supporters", "appeals", "deliveries", "reported_actions")
    async with service.store.engine.connect() as conn:
        rows = [
            repr(tuple(row))
            for table in tables
            for row in await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
        ]
    return "\n".join(rows)


async def test_purge_keeps_the_report_byte_for_byte_and_nothing_personal(
    service: Service,
) -> None:
    await seed(service)
    before = (await campaign_report(service, CLOSED)).model_dump_json()
    purged = await purge_campaign(service, CLOSED)
    after = (await campaign_report(service, CLOSED)).model_dump_json()
    assert after == before
    assert (purged.appeals, purged.pending, purged.supporters, purged.reported) == (3, 1, 2, 2)
    stored = await everything_stored(service)
    # Bo and Cy took part only here: nothing of them is left anywhere.
    for name, email, country in PEOPLE[1:]:
        for personal in (name, email, country, f"key-of-{email}"):
            assert personal not in stored
    # Ana also wrote to the open campaign: that appeal keeps her name, this one does not.
    assert f"A letter in the words of {PEOPLE[0][0]}" in stored  # the open campaign's
    assert stored.count("A letter in the words of Ana Lima") == 1
    # Di's delivery is still pending: kept until a later purge.
    assert "Di Park" in stored
    # Again: nothing more to do, and the report still the same.
    again = await purge_campaign(service, CLOSED)
    assert (again.appeals, again.supporters, again.reported) == (0, 0, 0)
    assert (await campaign_report(service, CLOSED)).model_dump_json() == before


async def test_an_open_campaign_is_not_purged(service: Service) -> None:
    with pytest.raises(ServiceError) as info:
        await purge_campaign(service, OPEN_CAMPAIGN)
    assert info.value.kind is ErrorKind.CONFLICT and "open until" in info.value.message
    with pytest.raises(ServiceError) as negative:
        await purge_campaign(service, CLOSED, older_than_days=-1)
    assert negative.value.field == "older_than"


async def test_an_online_backup_taken_mid_run_restores_and_finishes_the_queue(
    store: Store, catalog: CampaignCatalog, campaigns_dir: Path, tmp_path: Path
) -> None:
    """A backup while a worker sends (SQLite: `backup`; PostgreSQL: pg_dump, pg_restore
    into a new database). Restored, the copy's queue drains: what was delivered at the
    backup is not sent again; what was being sent then is sent again and marked a possible
    duplicate; the report counts each delivery once."""
    live = Service(store, catalog, RetryPolicy.from_settings(FAST_RETRY), 0.05)
    for n in range(40):
        await submitted(
            live,
            AppealRequest(
                campaign_id=OPEN_CAMPAIGN,
                supporter_name=f"Supporter {n}",
                supporter_email=f"s{n}@example.org",
                targets=["xi-jinping"],
                channels=["email"],
            ),
        )
    copy = tmp_path / "backup" / "copy.db"
    # Slow enough that, on a loaded machine too, sends are still in flight when the backup
    # (a pg_dump process starting up) takes its snapshot.
    slow = Faults(delay_seconds=0.5)
    async with Sandbox(tmp_path / "first", email_faults=slow, channels=["email"]) as first:
        settings = settings_for(first, database_url="unused", campaigns_dir=campaigns_dir)
        short = settings.worker.model_copy(update={"lease_seconds": 2.0})
        worker = build_worker(settings.model_copy(update={"worker": short}), live)
        worker.pacing = None
        stop = asyncio.Event()
        run = asyncio.create_task(worker.run(stop=stop))

        async def under_way() -> bool:  # some are recorded as delivered, and more are sending
            delivered = await store.list_deliveries(status=DeliveryStatus.DELIVERED)
            return len(delivered) >= 5

        await eventually(under_way, what="five sends recorded", within=30)
        restored_url, restored_db = await back_up(live, copy)
        stop.set()
        await run
        await close_adapters(worker)
    restored_store = await Store.open(restored_url)
    try:
        restored = Service(restored_store, catalog, RetryPolicy.from_settings(FAST_RETRY), 0.05)
        at_backup = {e.id: e.status for e in await restored_store.list_deliveries()}
        async with Sandbox(tmp_path / "second", channels=["email"]) as second:
            settings = settings_for(second, database_url="unused", campaigns_dir=campaigns_dir)
            short = settings.worker.model_copy(update={"lease_seconds": 0.5})
            drainer = build_worker(settings.model_copy(update={"worker": short}), restored)
            drainer.pacing = None
            await drainer.run(drain=True)
            await close_adapters(drainer)
        entries = {e.id: e for e in await restored_store.list_deliveries()}
        report = await campaign_report(restored, OPEN_CAMPAIGN)
    finally:
        await restored_store.close()
        if restored_db is not None:
            await _drop_postgres_database(restored_db)
    resent = {int(MESSAGE_ID.findall(str(m["Message-ID"]))[0]) for m in second.emails}
    delivered_then = {i for i, s in at_backup.items() if s is DeliveryStatus.DELIVERED}
    in_flight_then = {i for i, s in at_backup.items() if s is DeliveryStatus.SENDING}
    assert delivered_then and in_flight_then and resent == set(entries) - delivered_then
    assert {e.status for e in entries.values()} == {DeliveryStatus.DELIVERED}
    assert report.rehearsal.delivered == 40
    assert {i for i, e in entries.items() if e.settlement is Settlement.POSSIBLE_DUPLICATE} == (
        in_flight_then
    )


async def back_up(service: Service, path: Path) -> tuple[str, str | None]:
    """Back the database up while it is in use and restore it next to it: its URL, and
    the PostgreSQL database to drop afterwards."""
    if service.store.dialect == "sqlite":
        await backup(service, path)
        return f"sqlite+aiosqlite:///{path}", None
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("PostgreSQL's backup needs pg_dump and pg_restore (postgresql-client)")
    live = service.store.engine.url
    path.parent.mkdir(parents=True, exist_ok=True)
    await run("pg_dump", "--format=custom", "--file", str(path), libpq(live))
    url, name = await _postgres_database()
    await run("pg_restore", "--no-owner", "--dbname", libpq(make_url(url)), str(path))
    return url, name


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, (command[0], err.decode())
