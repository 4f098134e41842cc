"""From what a provider answered to what the store records: every such decision is here.

The worker (after a send, a status poll, an interruption or a bug) and the fax status
webhook all turn an answer into a :class:`DeliveryUpdate` through these functions, so a
callback moves a delivery exactly as polling would. They take ``now`` and do no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from dispatcher.channels.base import (
    DeliveryError,
    DuplicateContent,
    HandOff,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
)
from dispatcher.fax_hours import FaxHours
from dispatcher.models import (
    AttemptOutcome,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    Settlement,
)
from dispatcher.retry import RetryPolicy, SendAttempt, decide_retry

DUPLICATE_NOTE = "provider reports duplicate content: an earlier try had already gone out"

# How many times a post X refused as a duplicate is tried again with another reference.
VARIED_POSTS = 1


def _update(delivery: ClaimedDelivery, status: DeliveryStatus, **fields: Any) -> DeliveryUpdate:
    """An update bound to the attempt the delivery was claimed at."""
    return DeliveryUpdate(delivery.id, status, attempt=delivery.attempts, **fields)


def error_info(exc: DeliveryError) -> ErrorInfo:
    return ErrorInfo(type(exc).__name__, exc.code, exc.message)


def send_update(
    policy: RetryPolicy,
    delivery: ClaimedDelivery,
    attempt: SendAttempt,
    *,
    now: dt.datetime,
    poll_seconds: float,
) -> DeliveryUpdate:
    """What one send attempt means: delivered, awaiting confirmation, failed, or retry.

    A duplicate-content refusal counts as delivered only when an earlier try may have
    reached the provider; otherwise it is a permanent failure like any other refusal.
    """
    if attempt.lease_lost:
        return lease_lost_update(delivery, now=now)
    notes = f" [{attempt.tries} tries]" if attempt.tries > 1 else ""
    error = attempt.error
    if error is None:
        assert attempt.result is not None
        settlement = (
            Settlement.RECONCILED
            if attempt.reconciled
            else Settlement.POSSIBLE_DUPLICATE
            if attempt.possible_duplicate
            else None
        )
        return _answered(
            delivery,
            attempt.result,
            notes,
            now=now,
            poll_seconds=poll_seconds,
            settlement=settlement,
        )
    if isinstance(error, DuplicateContent) and attempt.maybe_sent:
        return _answered(
            delivery,
            SendResult(True, None, DUPLICATE_NOTE),
            notes,
            now=now,
            poll_seconds=poll_seconds,
            settlement=Settlement.RECONCILED,
        )
    summary = notes.strip() or None
    if isinstance(error, DuplicateContent) and delivery.duplicates_before < VARIED_POSTS:
        # Nothing of ours went out, yet X has these exact words: not a dead end. The next
        # attempt posts them with another reference (the same length, so it still fits).
        return retry_or_end(policy, delivery, error, AttemptOutcome.PERMANENT, summary, now=now)
    if isinstance(error, RateLimited):
        return rate_limited_update(delivery, error, summary, now=now)
    if isinstance(error, PermanentError):
        return refused_update(delivery, error, summary)
    outcome = AttemptOutcome.UNKNOWN if error.outcome_unknown else AttemptOutcome.TRANSIENT
    return retry_or_end(policy, delivery, error, outcome, summary, now=now)


def refused_update(
    delivery: ClaimedDelivery, error: PermanentError, summary: str | None
) -> DeliveryUpdate:
    """Retrying cannot help: failed, or for a post the API may not send, handed off (the
    supporter is given it to send themselves)."""
    return _update(
        delivery,
        DeliveryStatus.HANDED_OFF if isinstance(error, HandOff) else DeliveryStatus.FAILED,
        error=error_info(error),
        attempt_outcome=AttemptOutcome.PERMANENT,
        response_summary=summary,
    )


def _answered(
    delivery: ClaimedDelivery,
    result: SendResult,
    notes: str,
    *,
    now: dt.datetime,
    poll_seconds: float,
    settlement: Settlement | None = None,
) -> DeliveryUpdate:
    """The provider took it: delivered, or accepted with a confirmation still to come."""
    summary = (result.summary + notes).strip()
    if result.confirmed:
        return _update(
            delivery,
            DeliveryStatus.DELIVERED,
            provider_ref=result.provider_ref,
            attempt_outcome=AttemptOutcome.DELIVERED,
            response_summary=summary,
            settlement=settlement,
        )
    return _update(
        delivery,
        DeliveryStatus.AWAITING_CONFIRMATION,
        next_attempt_at=now + dt.timedelta(seconds=poll_seconds),
        provider_ref=result.provider_ref,
        attempt_outcome=AttemptOutcome.ACCEPTED,
        response_summary=summary,
        settlement=settlement,
    )


def rate_limited_update(
    delivery: ClaimedDelivery, error: RateLimited, summary: str | None, *, now: dt.datetime
) -> DeliveryUpdate:
    """The provider asked to wait: its channel pauses until then (for every worker; only
    this delivery, for one account's limit), and this delivery goes back to the queue for
    that time without using up an attempt."""
    until = now + dt.timedelta(seconds=max(1.0, error.retry_after))
    if until >= delivery.expires_at:
        return _update(
            delivery,
            DeliveryStatus.EXPIRED,
            error=ErrorInfo(
                type(error).__name__,
                error.code,
                f"the campaign deadline passes before the provider's wait ends: {error.message}",
            ),
            attempt_outcome=AttemptOutcome.RATE_LIMITED,
            response_summary=summary,
        )
    return _update(
        delivery,
        DeliveryStatus.QUEUED,
        next_attempt_at=until,
        error=error_info(error),
        attempt_outcome=AttemptOutcome.RATE_LIMITED,
        response_summary=summary,
        pause_until=until if error.whole_channel else None,
    )


def lease_lost_update(delivery: ClaimedDelivery, *, now: dt.datetime) -> DeliveryUpdate:
    """The worker could not renew its lease in time, so it did not send (another worker may
    hold the delivery already): due again at once, and the attempt is not counted."""
    return _update(
        delivery,
        DeliveryStatus.QUEUED,
        next_attempt_at=now,
        error=ErrorInfo(
            "LeaseLost",
            None,
            "not sent: the worker could not renew its lease on it in time "
            "(the database was slow or unreachable)",
        ),
        attempt_outcome=AttemptOutcome.NOT_SENT,
    )


def retry_or_end(
    policy: RetryPolicy,
    delivery: ClaimedDelivery,
    error: DeliveryError,
    outcome: AttemptOutcome,
    summary: str | None = None,
    *,
    now: dt.datetime,
) -> DeliveryUpdate:
    """Queue the delivery again after backoff, or end it (attempt cap, deadline)."""
    decision = decide_retry(
        policy,
        attempts_made=delivery.attempts - delivery.paused_attempts,
        error=error,
        now=now,
        expires_at=delivery.expires_at,
    )
    if decision.retry_at is not None:
        return _update(
            delivery,
            DeliveryStatus.QUEUED,
            next_attempt_at=decision.retry_at,
            error=error_info(error),
            attempt_outcome=outcome,
            response_summary=summary or None,
        )
    status = DeliveryStatus.EXPIRED if decision.expired else DeliveryStatus.FAILED
    return _update(
        delivery,
        status,
        error=ErrorInfo(type(error).__name__, error.code, decision.reason),
        attempt_outcome=outcome,
        response_summary=summary or None,
    )


def confirmation_update(
    policy: RetryPolicy,
    delivery: ClaimedDelivery,
    verdict: SendResult | DeliveryError,
    *,
    now: dt.datetime,
    poll_seconds: float,
    confirm_timeout: float | None = None,
) -> DeliveryUpdate:
    """A provider's word on an accepted delivery: delivered, failed, retry, or still waiting.

    With ``confirm_timeout`` (seconds from the provider's acceptance), the wait is bounded:
    polls are due no later than the timeout, and the poll at or past it is the last look-up.
    A definite answer then counts as always (transmitted, or failed); no answer (still in
    progress, or the provider could not be asked) ends the delivery ``failed`` with the
    reason, its attempt ``unknown`` (the fax may still go through; a retry looks it up).
    """
    if isinstance(verdict, DeliveryError):
        if isinstance(verdict, TransientError):
            return retry_or_end(policy, delivery, verdict, AttemptOutcome.TRANSIENT, now=now)
        return _update(
            delivery,
            DeliveryStatus.FAILED,
            error=error_info(verdict),
            attempt_outcome=AttemptOutcome.PERMANENT,
        )
    if verdict.confirmed:
        return _answered(delivery, verdict, "", now=now, poll_seconds=poll_seconds)
    next_poll = now + dt.timedelta(seconds=poll_seconds)
    if confirm_timeout is not None and delivery.accepted_at is not None:
        give_up_at = delivery.accepted_at + dt.timedelta(seconds=confirm_timeout)
        if now >= give_up_at:
            return unconfirmed_update(delivery, verdict, confirm_timeout)
        next_poll = min(next_poll, give_up_at)
    # Still transmitting: the attempt stays open, and the status is asked for again.
    return _update(delivery, DeliveryStatus.AWAITING_CONFIRMATION, next_attempt_at=next_poll)


# The error class of a delivery the provider accepted but never confirmed in time.
UNCONFIRMED = "Unconfirmed"


def unconfirmed_update(
    delivery: ClaimedDelivery, last_word: SendResult, confirm_timeout: float
) -> DeliveryUpdate:
    """The provider did not confirm within ``confirm_timeout`` seconds of accepting, and its
    last word settles nothing: the delivery ends ``failed``. Its attempt ends ``unknown``:
    the provider has it and may yet transmit it, so a retry asks it first."""
    said = last_word.summary or "no status"
    return _update(
        delivery,
        DeliveryStatus.FAILED,
        error=ErrorInfo(
            UNCONFIRMED,
            None,
            f"the gateway did not confirm the fax within {_duration(confirm_timeout)} "
            f"of accepting it (last look-up: {said})",
        ),
        attempt_outcome=AttemptOutcome.UNKNOWN,
        response_summary=said,
    )


def _duration(seconds: float) -> str:
    """'2 h', '90 min' or '30 s': how long a bound is, for the delivery log."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def internal_error_update(
    policy: RetryPolicy, delivery: ClaimedDelivery, exc: Exception, *, now: dt.datetime
) -> DeliveryUpdate:
    """A bug while handling the delivery: never lose it, retry later like a transient fault."""
    error = TransientError(f"internal error: {exc!r}")
    return retry_or_end(policy, delivery, error, AttemptOutcome.TRANSIENT, now=now)


def interrupted_update(delivery: ClaimedDelivery, *, now: dt.datetime) -> DeliveryUpdate:
    """A forced stop cut the send (or the status poll) off midway: due again at once.

    A send may have reached the provider, so its attempt ends ``unknown``.
    """
    if delivery.status is DeliveryStatus.AWAITING_CONFIRMATION:
        return _update(delivery, delivery.status, next_attempt_at=now)
    error = TransientError("worker stopped during the attempt", outcome_unknown=True)
    return _update(
        delivery,
        DeliveryStatus.QUEUED,
        next_attempt_at=now,
        error=error_info(error),
        attempt_outcome=AttemptOutcome.UNKNOWN,
    )


def within_fax_hours(update: DeliveryUpdate, hours: FaxHours | None) -> DeliveryUpdate:
    """A fax due again while its line is closed (a retry, a rate limit's wait) is due at
    the line's next opening instead; the claim would hold it until then anyway, and this
    way the log and the supporter's page say when it will really go."""
    if hours is None or update.status is not DeliveryStatus.QUEUED or not update.next_attempt_at:
        return update
    opening = hours.next_opening(update.next_attempt_at)
    if opening == update.next_attempt_at:
        return update
    return dataclasses.replace(update, next_attempt_at=opening)
