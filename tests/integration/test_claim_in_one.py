"""A claim's rules on both databases, whichever form it takes (on PostgreSQL a channel
nothing can hold back is claimed in one statement, dispatcher.store.claim_one_sql): the
attempt opened with its provider, and a delivery whose worker's lease ran out taken over
with its open attempt ended as unknown."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from dispatcher.models import AttemptOutcome, Channel, DeliveryStatus, NewAppeal, NewDelivery
from dispatcher.store import Store
from dispatcher.store.queue_sql import LEASE_EXPIRED
from dispatcher.store.schema import attempts, deliveries

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
APPEAL = NewAppeal(
    campaign_id="c1",
    supporter_name="Ana",
    supporter_email="ana@example.org",
    supporter_country=None,
    language="en",
    subject="S",
    body="Dear {salutation}",
    own_message=False,
    tweet=None,
    expires_at=NOW + dt.timedelta(days=1),
)


async def test_a_lost_lease_is_taken_over_with_its_attempt_ended_as_unknown(store: Store) -> None:
    email = NewDelivery("t1", "T1", "Dear t1", Channel.EMAIL, "t1@example.gov")
    await store.create_appeal(APPEAL, [email], now=NOW)
    smtp = {Channel.EMAIL: "smtp"}

    first = await store.claim_due_deliveries(
        "a", limit={Channel.EMAIL: 5}, lease_seconds=30, now=NOW, providers=smtp
    )
    assert [(c.status, c.attempts, c.earlier_outcome_unknown) for c in first] == [
        (DeliveryStatus.SENDING, 1, False)
    ]
    assert first[0].body == "Dear {salutation}" and first[0].supporter_email == "ana@example.org"
    # Within the lease nobody takes it; after it (worker a died) worker b does.
    later = NOW + dt.timedelta(seconds=10)
    assert (
        await store.claim_due_deliveries("b", limit={Channel.EMAIL: 5}, lease_seconds=30, now=later)
        == []
    )
    rescued = await store.claim_due_deliveries(
        "b", limit={Channel.EMAIL: 5}, lease_seconds=30, now=NOW + dt.timedelta(seconds=60),
        providers=smtp,
    )  # fmt: skip
    assert [(c.id, c.attempts, c.earlier_outcome_unknown) for c in rescued] == [
        (first[0].id, 2, True)
    ]

    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    attempts.c.number,
                    attempts.c.worker,
                    attempts.c.outcome,
                    attempts.c.error_class,
                    attempts.c.provider,
                ).order_by(attempts.c.number)
            )
        ).all()
        delivery = (
            await conn.execute(select(deliveries.c.lease_owner, deliveries.c.provider))
        ).one()
    assert [tuple(r) for r in rows] == [
        (1, "a", AttemptOutcome.UNKNOWN.value, LEASE_EXPIRED, "smtp"),
        (2, "b", None, None, "smtp"),
    ]
    assert tuple(delivery) == ("b", "smtp")
