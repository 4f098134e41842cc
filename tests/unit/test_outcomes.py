"""The outcome rules: a provider's answer and the time → the update the store records."""

from __future__ import annotations

import dataclasses
import datetime as dt

from dispatcher.channels.base import (
    DuplicateContent,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
)
from dispatcher.models import AttemptOutcome, Channel, DeliveryStatus
from dispatcher.outcomes import (
    confirmation_update,
    internal_error_update,
    interrupted_update,
    send_update,
)
from dispatcher.retry import RetryPolicy, SendAttempt
from tests.conftest import claimed_delivery

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
POLICY = RetryPolicy(
    base_seconds=60,
    max_seconds=600,
    max_attempts=3,
    fast_tries=1,
    fast_wait_seconds=0,
    fast_max_seconds=5,
)
CLAIMED = claimed_delivery(
    channel=Channel.TWITTER,
    address="@t",
    attempts=1,
    expires_at=NOW + dt.timedelta(days=1),
    tweet="Free them",
)


def failed_with(error: Exception, *, tries: int = 1, maybe_sent: bool = False) -> SendAttempt:
    assert isinstance(error, TransientError | PermanentError)
    return SendAttempt(None, error, tries, maybe_sent)


def test_a_confirmed_send_is_delivered_with_its_reference_and_tries() -> None:
    attempt = SendAttempt(SendResult(True, "ref-1", "250 OK"), None, 2, False)
    update = send_update(POLICY, CLAIMED, attempt, now=NOW, poll_seconds=60)
    assert (update.status, update.attempt_outcome) == (
        DeliveryStatus.DELIVERED,
        AttemptOutcome.DELIVERED,
    )
    assert (update.provider_ref, update.response_summary) == ("ref-1", "250 OK [2 tries]")


def test_an_accepted_send_is_polled_after_poll_seconds() -> None:
    attempt = SendAttempt(SendResult(False, "fax-9", "queued"), None, 1, False)
    update = send_update(POLICY, CLAIMED, attempt, now=NOW, poll_seconds=30)
    assert update.status is DeliveryStatus.AWAITING_CONFIRMATION
    assert update.next_attempt_at == NOW + dt.timedelta(seconds=30)


def test_duplicate_content_is_delivered_only_after_an_unknown_outcome() -> None:
    duplicate = DuplicateContent("X answered HTTP 403: duplicate content", code="403")
    after_unknown = send_update(
        POLICY, CLAIMED, failed_with(duplicate, maybe_sent=True), now=NOW, poll_seconds=60
    )
    assert after_unknown.status is DeliveryStatus.DELIVERED
    # Nothing of ours went out: tried once more (with another reference), then final.
    first_time = send_update(POLICY, CLAIMED, failed_with(duplicate), now=NOW, poll_seconds=60)
    assert (first_time.status, first_time.attempt_outcome) == (
        DeliveryStatus.QUEUED,
        AttemptOutcome.PERMANENT,
    )
    assert first_time.error is not None and first_time.error.code == "403"
    varied = dataclasses.replace(CLAIMED, attempts=2, duplicates_before=1)
    second_time = send_update(POLICY, varied, failed_with(duplicate), now=NOW, poll_seconds=60)
    assert (second_time.status, second_time.attempt_outcome) == (
        DeliveryStatus.FAILED,
        AttemptOutcome.PERMANENT,
    )


def test_a_rate_limit_waits_at_least_as_long_as_asked() -> None:
    limited = RateLimited("429", retry_after=3600)
    update = send_update(POLICY, CLAIMED, failed_with(limited), now=NOW, poll_seconds=60)
    assert (update.status, update.attempt_outcome) == (
        DeliveryStatus.QUEUED,
        AttemptOutcome.RATE_LIMITED,
    )
    assert update.next_attempt_at is not None
    assert update.next_attempt_at >= NOW + dt.timedelta(seconds=3600)


def test_a_lost_connection_is_unknown_and_the_cap_then_the_deadline_end_retrying() -> None:
    dropped = TransientError("connection lost", outcome_unknown=True)
    update = send_update(POLICY, CLAIMED, failed_with(dropped), now=NOW, poll_seconds=60)
    assert (update.status, update.attempt_outcome) == (
        DeliveryStatus.QUEUED,
        AttemptOutcome.UNKNOWN,
    )
    last = dataclasses.replace(CLAIMED, attempts=3)
    capped = send_update(POLICY, last, failed_with(dropped), now=NOW, poll_seconds=60)
    assert capped.status is DeliveryStatus.FAILED
    assert capped.error is not None and capped.error.message.startswith("gave up after 3")
    closing = dataclasses.replace(CLAIMED, expires_at=NOW + dt.timedelta(seconds=10))
    expired = send_update(POLICY, closing, failed_with(dropped), now=NOW, poll_seconds=60)
    assert expired.status is DeliveryStatus.EXPIRED


def test_confirmation_interruption_and_internal_errors() -> None:
    awaiting = dataclasses.replace(CLAIMED, status=DeliveryStatus.AWAITING_CONFIRMATION)
    still = confirmation_update(POLICY, awaiting, SendResult(False), now=NOW, poll_seconds=5)
    assert still.status is DeliveryStatus.AWAITING_CONFIRMATION
    assert still.attempt_outcome is None
    refused = confirmation_update(
        POLICY, awaiting, PermanentError("not operational"), now=NOW, poll_seconds=5
    )
    assert (refused.status, refused.attempt_outcome) == (
        DeliveryStatus.FAILED,
        AttemptOutcome.PERMANENT,
    )
    cut = interrupted_update(CLAIMED, now=NOW)
    assert (cut.status, cut.attempt_outcome, cut.next_attempt_at) == (
        DeliveryStatus.QUEUED,
        AttemptOutcome.UNKNOWN,
        NOW,
    )
    poll_cut = interrupted_update(awaiting, now=NOW)
    assert (poll_cut.status, poll_cut.attempt_outcome) == (awaiting.status, None)
    bug = internal_error_update(POLICY, CLAIMED, KeyError("x"), now=NOW)
    assert bug.status is DeliveryStatus.QUEUED
    assert bug.error is not None and bug.error.message == "internal error: KeyError('x')"
