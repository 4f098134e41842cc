"""Retry policy: fast tries inside one attempt (tenacity), durable backoff between attempts."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)

from dispatcher.channels.base import (
    ChannelAdapter,
    DeliveryError,
    LeaseGuard,
    LeaseLost,
    RateLimited,
    SendResult,
    TransientError,
    ensure_lease_held,
)
from dispatcher.models import ClaimedDelivery
from dispatcher.settings import RetrySettings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    max_attempts: int
    fast_tries: int
    fast_wait_seconds: float
    fast_max_seconds: float

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        return cls(
            base_seconds=settings.base_seconds,
            max_seconds=settings.max_seconds,
            max_attempts=settings.max_attempts,
            fast_tries=settings.fast_tries,
            fast_wait_seconds=settings.fast_wait_seconds,
            fast_max_seconds=settings.fast_max_seconds,
        )

    def backoff_seconds(self, attempts_made: int, rng: random.Random | None = None) -> float:
        """Capped exponential backoff with "equal jitter": between half and all of the cap."""
        exponent = max(0, attempts_made - 1)
        ceiling = min(self.max_seconds, self.base_seconds * (2.0 ** min(exponent, 32)))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What happens after a failed attempt: ``give_up`` (with why) or retry at ``retry_at``."""

    retry_at: dt.datetime | None
    expired: bool
    reason: str


def decide_retry(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    error: DeliveryError,
    now: dt.datetime,
    expires_at: dt.datetime,
    rng: random.Random | None = None,
) -> RetryDecision:
    """Schedule the next attempt, or end retrying on the attempt cap or the campaign deadline."""
    if attempts_made >= policy.max_attempts:
        return RetryDecision(
            None, False, f"gave up after {attempts_made} attempts; last error: {error.message}"
        )
    delay = policy.backoff_seconds(attempts_made, rng)
    if isinstance(error, RateLimited):
        delay = max(delay, error.retry_after)
    retry_at = now + dt.timedelta(seconds=delay)
    if retry_at >= expires_at:
        return RetryDecision(
            None, True, f"the campaign deadline passes before a retry; last error: {error.message}"
        )
    return RetryDecision(retry_at, False, error.message)


@dataclass(frozen=True, slots=True)
class SendAttempt:
    """What one attempt came to after its fast retries: the provider's answer or the last error.

    ``maybe_sent`` is true when a try of this attempt, or an earlier attempt, may have
    reached the provider (its outcome is unknown), so a refusal as a duplicate can mean
    that the delivery arrived. What the attempt means for the delivery is decided in
    :mod:`dispatcher.outcomes`.
    """

    result: SendResult | None
    error: DeliveryError | None
    tries: int
    maybe_sent: bool
    # The result is what the provider already held of an earlier try (nothing was sent).
    reconciled: bool = False
    # Sent again after an unknown outcome to a provider that cannot be asked (email).
    possible_duplicate: bool = False
    # Nothing was sent: the worker could no longer be sure of its lease (see LeaseLost).
    lease_lost: bool = False


async def send_with_fast_retries(
    adapter: ChannelAdapter,
    delivery: ClaimedDelivery,
    policy: RetryPolicy,
    lease: LeaseGuard,
) -> SendAttempt:
    """One attempt: send, retrying transient faults a few times within ``fast_max_seconds``.

    When an earlier try may have reached the provider, a provider that can be asked is
    asked first, and what it holds settles the attempt without sending again.

    A rate limit ends the attempt at once, so that the durable schedule pauses the
    channel instead; so does a lease the worker may no longer hold (``lease.held()`` false), as
    another worker may be about to send it: nothing more goes out. ``lease`` is handed on to
    the adapter, which checks it again right before the wire. Never raises a
    DeliveryError: it comes back in the result.
    """
    maybe_sent = delivery.earlier_outcome_unknown
    tries = 0
    last_error: DeliveryError | None = None

    def fast_retryable(exc: BaseException) -> bool:
        # A rate limit ends the attempt: the whole channel pauses (see outcomes).
        if not isinstance(exc, TransientError) or isinstance(exc, RateLimited):
            return False
        return lease.held()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.fast_tries) | stop_before_delay(policy.fast_max_seconds),
        wait=wait_exponential(multiplier=policy.fast_wait_seconds),
        retry=retry_if_exception(fast_retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                tries += 1
                ensure_lease_held(lease)
                if maybe_sent and adapter.finds_earlier:
                    found = await adapter.find_earlier(delivery)
                    if found is not None:
                        return SendAttempt(found, None, tries, maybe_sent, reconciled=True)
                try:
                    result = await adapter.send(delivery, lease)
                except DeliveryError as exc:
                    maybe_sent = maybe_sent or exc.outcome_unknown
                    last_error = exc
                    raise
    except DeliveryError as exc:
        return SendAttempt(None, exc, tries, maybe_sent)
    except LeaseLost:
        if last_error is not None:  # an earlier try of this attempt stands
            return SendAttempt(None, last_error, tries, maybe_sent)
        return SendAttempt(None, None, tries, maybe_sent, lease_lost=True)
    blind = maybe_sent and not adapter.finds_earlier
    return SendAttempt(result, None, tries, maybe_sent, possible_duplicate=blind)
