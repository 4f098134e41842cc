"""The worker's queue, held to one behaviour: the same scenarios run against the SQL store
(SQLite, PostgreSQL) and the in-memory queue, and must tell the same story, step by step.

Each scenario returns a trace of what it saw (statuses, attempt numbers, counts, times)
in terms of targets, not ids; the trace is checked against what the queue's rules say,
and the two implementations' traces against each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from dispatcher.fax_hours import FaxHours
from dispatcher.models import (
    AttemptOutcome,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    NewAppeal,
    NewDelivery,
)
from dispatcher.store import Store
from dispatcher.store.memory import MemoryQueue
from dispatcher.store.ports import WorkerStore

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
EMAIL, X = Channel.EMAIL, Channel.TWITTER


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


APPEAL = NewAppeal(
    campaign_id="c1",
    supporter_name="Ana",
    supporter_email="ana@example.org",
    supporter_country=None,
    language="en",
    subject="S",
    body="B",
    own_message=False,
    tweet="T",
    expires_at=at(86_400),
)
WANTED = [
    NewDelivery("t1", "T1", "Dear t1", EMAIL, "t1@example.gov"),
    NewDelivery("t2", "T2", "Dear t2", EMAIL, "t2@example.gov"),
    NewDelivery("t3", "T3", "Dear t3", EMAIL, "t3@example.gov"),
    NewDelivery("t1", "T1", "Dear t1", X, "@t1"),
]

Seed = Callable[[], Awaitable[None]]


def seen(claimed: list[ClaimedDelivery]) -> list[tuple[str, str, str, int, bool]]:
    return sorted(
        (c.target_id, c.channel.value, c.status.value, c.attempts, c.earlier_outcome_unknown)
        for c in claimed
    )


def delivered(c: ClaimedDelivery) -> DeliveryUpdate:
    return DeliveryUpdate(
        c.id,
        DeliveryStatus.DELIVERED,
        attempt_outcome=AttemptOutcome.DELIVERED,
        attempt=c.attempts,
        provider_ref=f"ref-{c.target_id}",
    )


def again_at(c: ClaimedDelivery, when: dt.datetime) -> DeliveryUpdate:
    return DeliveryUpdate(
        c.id,
        DeliveryStatus.QUEUED,
        next_attempt_at=when,
        attempt_outcome=AttemptOutcome.TRANSIENT,
        attempt=c.attempts,
    )


async def claims_and_outcomes(queue: WorkerStore, seed: Seed) -> list[object]:
    """Per-channel limits, oldest first, leases renewed for their owner only, outcomes
    settling or re-queueing, and when the next one falls due."""
    await seed()
    trace: list[object] = [await queue.pending_count()]
    first = await queue.claim_due_deliveries(
        "a", limit={EMAIL: 2, X: 1}, lease_seconds=30, now=at(1)
    )
    trace.append(seen(first))
    trace.append(sorted(await queue.renew_leases("b", [c.id for c in first], lease_seconds=30)))
    renewed = await queue.renew_leases("a", [c.id for c in first], lease_seconds=30, now=at(2))
    trace.append(len(renewed))
    rest = await queue.claim_due_deliveries(
        "a", limit={EMAIL: 5, X: 5}, lease_seconds=30, now=at(3)
    )
    trace.append(seen(rest))
    by_target = {(c.target_id, c.channel): c for c in [*first, *rest]}
    retry = by_target["t2", EMAIL]
    updates = [delivered(c) for c in [*first, *rest] if c is not retry]
    await queue.record_outcomes("a", [*updates, again_at(retry, at(120))], now=at(4))
    trace.append(await queue.pending_count())
    trace.append(await queue.next_due_at())
    trace.append(await queue.pending_count(channels=[X]))
    trace.append(seen(await queue.claim_due_deliveries("a", limit=5, lease_seconds=30, now=at(60))))
    trace.append(
        seen(await queue.claim_due_deliveries("a", limit=5, lease_seconds=30, now=at(121)))
    )
    return trace


async def a_lost_lease_is_rescued(queue: WorkerStore, seed: Seed) -> list[object]:
    """A lease that ran out is taken over by another worker as an outcome unknown (never
    by the one that says it still holds it), and the first worker's late outcome is left
    alone."""
    await seed()
    [held] = await queue.claim_due_deliveries("a", limit={X: 1}, lease_seconds=1, now=at(0))
    trace: list[object] = [seen([held])]
    kept = await queue.claim_due_deliveries(
        "a", limit={X: 1}, lease_seconds=30, now=at(5), holding=[held.id]
    )
    trace.append(seen(kept))
    trace.append(await queue.next_due_at(channels=[X]))
    rescued = await queue.claim_due_deliveries("b", limit={X: 1}, lease_seconds=30, now=at(5))
    trace.append(seen(rescued))
    await queue.record_outcomes("a", [delivered(held)], now=at(6))  # too late: b has it
    trace.append(await queue.pending_count(channels=[X]))
    await queue.record_outcomes("b", [delivered(rescued[0])], now=at(7))
    trace.append(await queue.pending_count(channels=[X]))
    return trace


CLAIMS_AND_OUTCOMES = [
    4,
    [("t1", "email", "sending", 1, False), ("t1", "twitter", "sending", 1, False),
     ("t2", "email", "sending", 1, False)],
    [],
    3,
    [("t3", "email", "sending", 1, False)],
    1,
    at(120),
    0,
    [],
    [("t2", "email", "sending", 2, False)],
]  # fmt: skip
LOST_LEASE = [
    [("t1", "twitter", "sending", 1, False)],
    [],
    at(1),
    [("t1", "twitter", "sending", 2, True)],
    1,
    0,
]


async def both(
    store: Store, scenario: Callable[[WorkerStore, Seed], Awaitable[list[object]]]
) -> tuple[list[object], list[object]]:
    memory = MemoryQueue()

    async def seed_sql() -> None:
        await store.create_appeal(APPEAL, WANTED, now=NOW)

    async def seed_memory() -> None:
        await memory.create_appeal(APPEAL, WANTED, now=NOW)

    return await scenario(store, seed_sql), await scenario(memory, seed_memory)


async def test_claims_and_outcomes_tell_the_same_story(store: Store) -> None:
    sql, memory = await both(store, claims_and_outcomes)
    assert sql == CLAIMS_AND_OUTCOMES
    assert memory == sql


async def test_a_lost_lease_is_rescued_alike(store: Store) -> None:
    sql, memory = await both(store, a_lost_lease_is_rescued)
    assert sql == LOST_LEASE
    assert memory == sql


async def test_the_memory_queue_refuses_what_it_does_not_keep() -> None:
    queue = MemoryQueue()
    closed = FaxHours.parse("09:00-17:00", "UTC")
    try:
        await queue.claim_due_deliveries(
            "a", limit=1, lease_seconds=1, fax_hours={("c1", "+12025550100"): closed}
        )
    except ValueError as exc:
        assert "fax hours" in str(exc)
    else:
        raise AssertionError("the memory queue took fax hours it does not keep")
