"""Pacing held in the database: per recipient address, per provider account, and a
provider's pause; shared by every store (as by every worker process) on both databases."""

from __future__ import annotations

import datetime as dt

from dispatcher.models import (
    AttemptOutcome,
    CampaignPacing,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    PacingRules,
)
from dispatcher.store import Store
from tests.integration.test_store import NOW, appeal, delivery

TO_MINISTER = delivery("t1", Channel.EMAIL, "Minister@gov.example")
TWO_A_MINUTE = PacingRules(per_recipient=2)


async def five_emails_to_one_inbox(store: Store) -> None:
    for n in range(5):
        await store.create_appeal(appeal(f"s{n}@example.org"), [TO_MINISTER], now=NOW)


async def claim(store: Store, at: dt.datetime, rules: PacingRules = TWO_A_MINUTE) -> list[int]:
    claimed = await store.claim_due_deliveries(
        "w", limit=10, lease_seconds=30, now=at, pacing=rules
    )
    return [d.id for d in claimed]


async def test_a_recipient_gets_its_minute_at_once_then_one_per_interval(store: Store) -> None:
    await five_emails_to_one_inbox(store)
    assert len(await claim(store, NOW)) == 2  # a quiet inbox takes a minute's worth
    # The rest went back to the queue, spaced out, with no attempt used.
    waiting = [e for e in await store.list_deliveries() if e.status is DeliveryStatus.QUEUED]
    assert [e.attempts for e in waiting] == [0, 0, 0]
    assert sorted(e.next_attempt_at for e in waiting) == [
        NOW + dt.timedelta(seconds=s) for s in (30, 60, 90)
    ]
    assert [await store.list_attempts(e.id) for e in waiting] == [[], [], []]
    assert await claim(store, NOW + dt.timedelta(seconds=29)) == []
    assert len(await claim(store, NOW + dt.timedelta(seconds=30))) == 1
    assert len(await claim(store, NOW + dt.timedelta(seconds=61))) == 1


async def test_every_store_shares_the_pace(store: Store, database_url: str) -> None:
    """Two processes (two stores, two engines) count against the same inbox."""
    await five_emails_to_one_inbox(store)
    other = await Store.open(database_url)
    try:
        assert len(await claim(store, NOW)) == 2
        assert await claim(other, NOW + dt.timedelta(seconds=1)) == []
        assert len(await claim(other, NOW + dt.timedelta(seconds=30))) == 1
    finally:
        await other.close()


async def test_a_campaign_may_lift_or_set_its_own_pace(store: Store) -> None:
    await five_emails_to_one_inbox(store)
    unlimited = PacingRules(per_recipient=2, campaigns={"c1": CampaignPacing(0)})
    assert len(await claim(store, NOW, unlimited)) == 5
    # An account rate: one a minute through the relay, whatever the recipient.
    for n in range(3):
        await store.create_appeal(
            appeal(f"t{n}@example.org"),
            [delivery(f"x{n}", Channel.EMAIL, f"x{n}@gov.example")],
            now=NOW,
        )
    one_a_minute = PacingRules(per_recipient=0, per_account={Channel.EMAIL: 1})
    assert len(await claim(store, NOW, one_a_minute)) == 1
    assert len(await claim(store, NOW + dt.timedelta(seconds=60), one_a_minute)) == 1


async def test_a_providers_pause_holds_its_channel_for_every_claim(store: Store) -> None:
    fax_a = delivery("t1", Channel.FAX, "+12025550100")
    fax_b = delivery("t2", Channel.FAX, "+12025550199")
    await store.create_appeal(appeal(), [fax_a, fax_b, TO_MINISTER], now=NOW)
    [first] = await store.claim_due_deliveries(
        "w", limit={Channel.FAX: 1}, lease_seconds=30, now=NOW
    )
    until = NOW + dt.timedelta(seconds=120)
    limited = DeliveryUpdate(
        first.id,
        DeliveryStatus.QUEUED,
        next_attempt_at=until,
        error=ErrorInfo("RateLimited", "429", "fax gateway answered HTTP 429"),
        attempt_outcome=AttemptOutcome.RATE_LIMITED,
        attempt=first.attempts,
        pause_until=until,
    )
    await store.record_outcomes("w", [limited], now=NOW)
    during = NOW + dt.timedelta(seconds=60)
    claimed = await store.claim_due_deliveries("w2", limit=10, lease_seconds=3600, now=during)
    assert [d.channel for d in claimed] == [Channel.EMAIL]  # fax waits, email does not
    after = await store.claim_due_deliveries("w2", limit=10, lease_seconds=30, now=until)
    assert sorted(d.channel for d in after) == [Channel.FAX, Channel.FAX]
    again = next(d for d in after if d.id == first.id)
    assert again.attempts == 2 and again.paused_attempts == 1  # the 429 is not counted
