"""The store on SQLite and PostgreSQL alike: intake, dedupe, claims, leases, outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from dispatcher.models import (
    UNCONFIRMED_AT_DEADLINE,
    AttemptOutcome,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    NewAppeal,
    NewDelivery,
)
from dispatcher.outcomes import lease_lost_update
from dispatcher.store import Store, pseudonym

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=30)


def appeal(email: str = "ana@example.org", *, expires_at: dt.datetime = LATER) -> NewAppeal:
    return NewAppeal(
        campaign_id="c1",
        supporter_name="Ana",
        supporter_email=email,
        supporter_country=None,
        language="en",
        subject="S",
        body="B",
        own_message=False,
        tweet="T",
        expires_at=expires_at,
    )


def delivery(target: str, channel: Channel, address: str) -> NewDelivery:
    return NewDelivery(target, target.title(), f"Dear {target}", channel, address)


EMAIL_T1 = delivery("t1", Channel.EMAIL, "t1@example.gov")
FAX_T1 = delivery("t1", Channel.FAX, "+12025550100")
FAX_T2_SAME_LINE = delivery("t2", Channel.FAX, "+12025550100")
FAX_T3 = delivery("t3", Channel.FAX, "+12025550199")


async def test_appeal_and_deliveries_are_stored_together(store: Store) -> None:
    receipt = await store.create_appeal(appeal(), [EMAIL_T1, FAX_T1], now=NOW)
    assert len(receipt.appeal_id) >= 20  # an unguessable token, not a sequence number
    assert [(d.target_id, d.channel) for d in receipt.created] == [
        ("t1", Channel.EMAIL),
        ("t1", Channel.FAX),
    ]
    assert await store.pending_count() == 2
    assert await store.appeal_counts("c1") == (1, 1)


async def test_a_repeat_stores_nothing_tells_nothing_and_notices_the_first_appeal(
    store: Store,
) -> None:
    first = await store.create_appeal(appeal(), [EMAIL_T1, FAX_T1], now=NOW)
    again = await store.create_appeal(
        appeal("ANA@Example.org"), [EMAIL_T1, FAX_T1], appeal_id="fresh-id", now=NOW
    )
    # The id is the one this submission was given, never the first appeal's.
    assert again.is_repeat and again.appeal_id == "fresh-id" != first.appeal_id
    assert len(again.already_counted) == 2
    assert await store.appeal_counts("c1") == (1, 1)
    assert await store.pending_count() == 2
    assert await store.appeal_campaign("fresh-id") is None
    # The address is told, once, about the first appeal; a third try adds nothing.
    await store.create_appeal(appeal(), [EMAIL_T1], now=NOW)
    jobs = await store.claim_receipts(limit=10, lease_seconds=60, now=NOW)
    assert [(j.kind, j.appeal_id) for j in jobs] == [("repeat", first.appeal_id)]


async def test_a_deleted_supporter_stays_counted_once_under_the_alias(store: Store) -> None:
    alias = pseudonym(b"k" * 32, "ana@example.org")
    first = await store.create_appeal(dataclasses.replace(appeal(), email_alias=alias), [EMAIL_T1])
    await _settle(store, first.created[0].id)
    assert await store.forget_appeal(first.appeal_id, key=b"k" * 32) is True
    again = await store.create_appeal(
        dataclasses.replace(appeal(), email_alias=alias), [EMAIL_T1, FAX_T1]
    )
    assert [d.channel for d in again.created] == [Channel.FAX]
    assert [d.channel for d in again.already_counted] == [Channel.EMAIL]


async def test_a_suppressed_address_stores_nothing(store: Store) -> None:
    alias = pseudonym(b"k" * 32, "ana@example.org")
    first = await store.create_appeal(dataclasses.replace(appeal(), email_alias=alias), [EMAIL_T1])
    assert await store.disown_appeal(first.appeal_id, alias=alias, key=b"k" * 32) == 1
    entry = (await store.list_deliveries(appeal_id=first.appeal_id))[0]
    assert entry.status is DeliveryStatus.CANCELLED
    again = await store.create_appeal(
        dataclasses.replace(appeal("other@example.org"), email_alias=alias), [FAX_T1]
    )
    assert again.suppressed and not again.created
    assert await store.pending_count() == 0


async def test_emails_that_would_carry_the_address_wait_for_its_confirmation(
    store: Store,
) -> None:
    asked = dataclasses.replace(appeal(expires_at=NOW + dt.timedelta(hours=1)), reply_to=True)
    receipt = await store.create_appeal(asked, [EMAIL_T1, FAX_T3], now=NOW)
    statuses = {d.channel: d.status for d in receipt.created}
    assert statuses == {
        Channel.EMAIL: DeliveryStatus.AWAITING_SUPPORTER,
        Channel.FAX: DeliveryStatus.QUEUED,
    }
    claimed = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW)
    assert [d.channel for d in claimed] == [Channel.FAX]
    assert not claimed[0].reply_to
    jobs = await store.claim_receipts(limit=10, lease_seconds=60, now=NOW)
    assert [(j.kind, j.appeal_id) for j in jobs] == [("confirm", receipt.appeal_id)]
    assert await store.confirm_reply_to(receipt.appeal_id, now=NOW) is True
    claimed = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW)
    assert [(d.channel, d.reply_to) for d in claimed] == [(Channel.EMAIL, True)]


async def test_an_address_never_confirmed_expires_at_the_deadline(store: Store) -> None:
    deadline = NOW + dt.timedelta(hours=1)
    asked = dataclasses.replace(appeal(expires_at=deadline), reply_to=True)
    receipt = await store.create_appeal(asked, [EMAIL_T1], now=NOW)
    assert await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=deadline) == []
    entry = (await store.list_deliveries(appeal_id=receipt.appeal_id))[0]
    assert entry.status is DeliveryStatus.EXPIRED
    assert entry.last_error is not None
    assert entry.last_error.message == UNCONFIRMED_AT_DEADLINE


async def _settle(store: Store, delivery_id: int) -> None:
    claimed = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60)
    assert [d.id for d in claimed] == [delivery_id]
    await store.record_outcomes(
        "w1",
        [
            DeliveryUpdate(
                delivery_id,
                DeliveryStatus.DELIVERED,
                attempt_outcome=AttemptOutcome.DELIVERED,
                attempt=1,
            )
        ],
    )


async def test_partial_repeat_creates_only_the_new_pairs(store: Store) -> None:
    await store.create_appeal(appeal(), [EMAIL_T1], now=NOW)
    receipt = await store.create_appeal(appeal(), [EMAIL_T1, FAX_T1], now=NOW)
    assert [d.channel for d in receipt.created] == [Channel.FAX]
    assert [d.channel for d in receipt.already_counted] == [Channel.EMAIL]
    assert await store.pending_count() == 2


async def test_concurrent_identical_submissions_count_once(store: Store) -> None:
    receipts = await asyncio.gather(
        *(store.create_appeal(appeal(), [EMAIL_T1, FAX_T1], now=NOW) for _ in range(5))
    )
    assert sum(len(r.created) for r in receipts) == 2
    assert await store.appeal_counts("c1") == (1, 1)
    assert await store.pending_count() == 2


async def test_claim_leases_opens_an_attempt_and_skips_claimed_rows(store: Store) -> None:
    await store.create_appeal(appeal(), [EMAIL_T1, FAX_T3], now=NOW)
    claimed = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW)
    assert {d.channel for d in claimed} == {Channel.EMAIL, Channel.FAX}
    assert all(d.status is DeliveryStatus.SENDING and d.attempts == 1 for d in claimed)
    assert all(not d.earlier_outcome_unknown for d in claimed)
    assert await store.claim_due_deliveries("w2", limit=10, lease_seconds=60, now=NOW) == []
    attempts = await store.list_attempts(claimed[0].id)
    assert [(a.number, a.worker, a.outcome) for a in attempts] == [(1, "w1", None)]


async def test_expired_lease_makes_a_delivery_due_again(store: Store) -> None:
    await store.create_appeal(appeal(), [EMAIL_T1], now=NOW)
    [first] = await store.claim_due_deliveries("crashed", limit=10, lease_seconds=60, now=NOW)
    before_expiry = NOW + dt.timedelta(seconds=59)
    assert (
        await store.claim_due_deliveries("w2", limit=10, lease_seconds=60, now=before_expiry) == []
    )
    after_expiry = NOW + dt.timedelta(seconds=61)
    [again] = await store.claim_due_deliveries("w2", limit=10, lease_seconds=60, now=after_expiry)
    assert again.id == first.id and again.attempts == 2
    assert again.earlier_outcome_unknown  # the crashed attempt may have gone out
    attempts = await store.list_attempts(first.id)
    assert [(a.number, a.outcome) for a in attempts] == [(1, "unknown"), (2, None)]
    # The crashed worker's late report does not overwrite the new owner's lease.
    late = DeliveryUpdate(
        first.id, DeliveryStatus.DELIVERED, attempt_outcome=AttemptOutcome.DELIVERED, attempt=1
    )
    await store.record_outcomes("crashed", [late], now=after_expiry)
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.SENDING and entry.attempts == 2
    # It closes its own attempt with what it learned (keeping the mark of the lost lease);
    # the new owner's stays open.
    attempts = await store.list_attempts(first.id)
    assert [(a.number, a.outcome) for a in attempts] == [(1, "delivered"), (2, None)]
    assert attempts[0].error is not None and attempts[0].error.error_class == "LeaseExpired"
    assert attempts[0].error.message.endswith("recorded: delivered")
    # The new owner hands it back unsent; whoever takes it next still knows that the first
    # attempt went out, so it asks the provider (or marks a resend) instead of trusting it.
    await store.record_outcomes("w2", [lease_lost_update(again, now=after_expiry)])
    [third] = await store.claim_due_deliveries("w3", limit=10, lease_seconds=60, now=after_expiry)
    assert third.attempts == 3 and third.paused_attempts == 1
    assert third.earlier_outcome_unknown


async def test_one_fax_in_flight_per_number(store: Store) -> None:
    await store.create_appeal(appeal("a@example.org"), [FAX_T1, FAX_T3], now=NOW)
    await store.create_appeal(appeal("b@example.org"), [FAX_T2_SAME_LINE], now=NOW)
    claimed = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW)
    assert sorted(d.address for d in claimed) == ["+12025550100", "+12025550199"]
    line = next(d for d in claimed if d.address == "+12025550100")
    # While the first fax awaits confirmation, the second to that number waits too.
    await store.record_outcomes(
        "w1",
        [
            DeliveryUpdate(
                line.id,
                DeliveryStatus.AWAITING_CONFIRMATION,
                next_attempt_at=NOW + dt.timedelta(seconds=30),
                provider_ref="42",
                attempt_outcome=AttemptOutcome.ACCEPTED,
            )
        ],
        now=NOW,
    )
    soon = NOW + dt.timedelta(seconds=1)
    assert await store.claim_due_deliveries("w2", limit=10, lease_seconds=60, now=soon) == []
    # The poll is due later; it is claimed as a poll (no new attempt) ...
    poll_time = NOW + dt.timedelta(seconds=31)
    [poll] = await store.claim_due_deliveries("w2", limit=10, lease_seconds=60, now=poll_time)
    assert poll.id == line.id and poll.status is DeliveryStatus.AWAITING_CONFIRMATION
    assert poll.attempts == 1 and poll.provider_ref == "42"
    await store.record_outcomes(
        "w2",
        [
            DeliveryUpdate(
                poll.id, DeliveryStatus.DELIVERED, attempt_outcome=AttemptOutcome.DELIVERED
            )
        ],
        now=poll_time,
    )
    # ... and once it is delivered the line is free for the next fax.
    [nxt] = await store.claim_due_deliveries("w2", limit=10, lease_seconds=60, now=poll_time)
    assert nxt.address == "+12025550100" and nxt.id != line.id


async def test_outcomes_and_attempts_are_recorded(store: Store) -> None:
    await store.create_appeal(appeal(), [EMAIL_T1], now=NOW)
    [d] = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW)
    retry_at = NOW + dt.timedelta(minutes=2)
    error = ErrorInfo("TransientError", "451", "SMTP 451 try later")
    await store.record_outcomes(
        "w1",
        [
            DeliveryUpdate(
                d.id,
                DeliveryStatus.QUEUED,
                next_attempt_at=retry_at,
                error=error,
                attempt_outcome=AttemptOutcome.TRANSIENT,
            )
        ],
        now=NOW,
    )
    [entry] = await store.list_deliveries(campaign_id="c1")
    assert (entry.status, entry.attempts, entry.last_error) == (DeliveryStatus.QUEUED, 1, error)
    assert entry.next_attempt_at == retry_at
    assert await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW) == []
    [d2] = await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=retry_at)
    assert d2.attempts == 2 and not d2.earlier_outcome_unknown
    await store.record_outcomes(
        "w1",
        [
            DeliveryUpdate(
                d2.id,
                DeliveryStatus.DELIVERED,
                provider_ref="<m@x>",
                attempt_outcome=AttemptOutcome.DELIVERED,
                response_summary="250 OK",
            )
        ],
        now=retry_at,
    )
    attempts = await store.list_attempts(d.id)
    assert [(a.number, a.outcome, a.error) for a in attempts] == [
        (1, "transient", error),
        (2, "delivered", None),
    ]
    assert attempts[1].response_summary == "250 OK" and attempts[1].finished_at == retry_at
    [entry] = await store.list_deliveries(campaign_id="c1")
    assert entry.status is DeliveryStatus.DELIVERED and entry.last_error is None
    assert await store.delivery_counts("c1") == [("t1", "email", "delivered", False, 1)]


async def test_queued_deliveries_past_the_deadline_expire(store: Store) -> None:
    deadline = NOW + dt.timedelta(hours=1)
    await store.create_appeal(appeal(expires_at=deadline), [EMAIL_T1], now=NOW)
    after = deadline + dt.timedelta(seconds=1)
    assert await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=after) == []
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.EXPIRED
    assert entry.last_error is not None and "deadline" in entry.last_error.message
    assert await store.pending_count() == 0


async def test_next_due_at_follows_the_schedule(store: Store) -> None:
    assert await store.next_due_at() is None
    await store.create_appeal(appeal(), [EMAIL_T1], now=NOW)
    assert await store.next_due_at() == NOW


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from dispatcher.store.engine import HEAD_REVISION, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


async def test_reopening_an_up_to_date_database_keeps_its_rows(database_url: str) -> None:
    first = await Store.open(database_url)
    await first.create_appeal(appeal(), [EMAIL_T1], now=NOW)
    await first.close()
    second = await Store.open(database_url)
    try:
        assert await second.pending_count() == 1
    finally:
        await second.close()


async def test_held_deliveries_are_never_claimed_and_expire_at_the_deadline(store: Store) -> None:
    deadline = NOW + dt.timedelta(hours=1)
    held = dataclasses.replace(appeal(expires_at=deadline), held=True)
    receipt = await store.create_appeal(held, [EMAIL_T1], now=NOW)
    assert [d.status for d in receipt.created] == [DeliveryStatus.HELD]
    assert await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=NOW) == []
    assert await store.pending_count() == 0  # a drained worker does not wait for a review
    after = deadline + dt.timedelta(seconds=1)
    assert await store.claim_due_deliveries("w1", limit=10, lease_seconds=60, now=after) == []
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.EXPIRED


async def test_each_attempt_records_its_provider_and_the_sandbox_is_counted_apart(
    store: Store,
) -> None:
    """The count shared with officials takes only what went through a real provider:
    the email went through SMTP, the fax to the sandbox (a rehearsal)."""
    providers = {Channel.EMAIL: "smtp", Channel.FAX: "sandbox"}
    receipt = await store.create_appeal(appeal(), [EMAIL_T1, FAX_T3], providers=providers)
    assert {
        e.channel: e.provider for e in await store.list_deliveries(campaign_id="c1")
    } == providers  # known from intake, before any attempt
    claimed = await store.claim_due_deliveries(
        "w1", limit=10, lease_seconds=60, providers={Channel.EMAIL: "smtp", Channel.FAX: "sandbox"}
    )
    await store.record_outcomes(
        "w1",
        [
            DeliveryUpdate(d.id, DeliveryStatus.DELIVERED, attempt_outcome=AttemptOutcome.DELIVERED,
                           attempt=1)
            for d in claimed
        ],
    )  # fmt: skip
    for d in receipt.created:
        [attempt] = await store.list_attempts(d.id)
        assert attempt.provider == providers[d.channel]
    assert sorted(await store.delivery_counts("c1")) == [
        ("t1", "email", "delivered", False, 1),
        ("t3", "fax", "delivered", True, 1),
    ]
    assert await store.appeal_counts("c1") == (1, 1)  # it reached an official by email
    assert await store.appeal_counts("c1", rehearsal=True) == (0, 0)
    rehearsed = await store.create_appeal(
        appeal("bo@example.org"), [FAX_T1], providers={Channel.FAX: "sandbox"}
    )
    assert rehearsed.created
    assert await store.appeal_counts("c1", rehearsal=True) == (1, 1)
