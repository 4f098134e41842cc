"""`purge`: a closed campaign's supporters' personal data goes, its report stays the same
to the byte, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from dispatcher.models import (
    AttemptOutcome,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    NewAppeal,
    NewDelivery,
)
from dispatcher.service import ErrorKind, Service, ServiceError
from dispatcher.service.reporting import campaign_report
from dispatcher.service.retention import purge_campaign
from tests.conftest import OPEN_CAMPAIGN

CLOSED = "ua-61-21"
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
