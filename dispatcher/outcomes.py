"""From what a provider answered to what the store records: one place for the decision.

The worker (after a send or a status poll) and the fax status webhook both use these, so a
callback moves a delivery exactly as polling would.
"""

from __future__ import annotations

import datetime as dt

from dispatcher.channels.base import DeliveryError, SendResult, TransientError
from dispatcher.models import (
    AttemptOutcome,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    utcnow,
)
from dispatcher.retry import RetryPolicy, decide_retry


def error_info(exc: DeliveryError) -> ErrorInfo:
    return ErrorInfo(type(exc).__name__, exc.code, exc.message)


def retry_or_end(
    policy: RetryPolicy,
    delivery: ClaimedDelivery,
    error: DeliveryError,
    outcome: AttemptOutcome,
    summary: str | None = None,
) -> DeliveryUpdate:
    """Queue the delivery again after backoff, or end it (attempt cap, deadline)."""
    decision = decide_retry(
        policy,
        attempts_made=delivery.attempts,
        error=error,
        now=utcnow(),
        expires_at=delivery.expires_at,
    )
    if decision.retry_at is not None:
        return DeliveryUpdate(
            delivery.id,
            DeliveryStatus.QUEUED,
            next_attempt_at=decision.retry_at,
            error=error_info(error),
            attempt_outcome=outcome,
            response_summary=summary or None,
        )
    status = DeliveryStatus.EXPIRED if decision.expired else DeliveryStatus.FAILED
    return DeliveryUpdate(
        delivery.id,
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
    poll_seconds: float,
) -> DeliveryUpdate:
    """A provider's word on an accepted delivery: delivered, failed, retry, or still waiting."""
    if isinstance(verdict, DeliveryError):
        if isinstance(verdict, TransientError):
            return retry_or_end(policy, delivery, verdict, AttemptOutcome.TRANSIENT)
        return DeliveryUpdate(
            delivery.id,
            DeliveryStatus.FAILED,
            error=error_info(verdict),
            attempt_outcome=AttemptOutcome.PERMANENT,
        )
    if verdict.confirmed:
        return DeliveryUpdate(
            delivery.id,
            DeliveryStatus.DELIVERED,
            attempt_outcome=AttemptOutcome.DELIVERED,
            response_summary=verdict.summary,
        )
    return DeliveryUpdate(
        delivery.id,
        DeliveryStatus.AWAITING_CONFIRMATION,
        next_attempt_at=utcnow() + dt.timedelta(seconds=poll_seconds),
    )
