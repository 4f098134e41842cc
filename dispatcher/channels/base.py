"""The adapter interface and the three error classes every adapter translates into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dispatcher.models import Channel, ClaimedDelivery


class DeliveryError(Exception):
    """A provider refused or failed a delivery. ``code`` is the provider's own code.

    ``outcome_unknown`` is set when the request may have reached the provider before the
    failure (a timeout or dropped connection after sending), so a retry could be a repeat.
    """

    def __init__(self, message: str, *, code: str | None = None, outcome_unknown: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.outcome_unknown = outcome_unknown


class TransientError(DeliveryError):
    """Worth retrying: busy line, timeout, 4xx SMTP reply, 5xx HTTP."""


class RateLimited(TransientError):
    """The provider asked us to wait ``retry_after`` seconds: the whole channel waits,
    unless ``whole_channel`` is False (the limit is one account's: a supporter's own)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str | None = None,
        whole_channel: bool = True,
    ):
        super().__init__(message, code=code)
        self.retry_after = max(0.0, retry_after)
        self.whole_channel = whole_channel


class PermanentError(DeliveryError):
    """Retrying cannot help: rejected address, bad credentials, refused content."""


class DuplicateContent(PermanentError):
    """The provider already has this exact content (X answers 403 "duplicate content").

    Whether that means "delivered" depends on history the adapter does not see: the worker
    decides (delivered if an earlier try's outcome was unknown, permanent otherwise).
    """


class HandOff(PermanentError):
    """Posting through the API is not possible for this delivery (no account connected,
    X refused the app or the account, a refused token): the supporter is given the
    prepared post to send themselves. The delivery ends ``handed_off``, never failed."""


class LeaseLost(Exception):
    """Raised instead of sending: the worker can no longer be sure it holds the delivery."""


class LeaseGuard(Protocol):
    """A delivery's lease as the worker knows it, handed to ``send``: ``held()`` turns
    false once the worker cannot be sure the delivery is still its own (another worker
    may be about to take it over)."""

    def held(self) -> bool: ...


class _Unguarded:
    """For a send outside any worker (a one-off from the command line, a test)."""

    def held(self) -> bool:
        return True


UNGUARDED: LeaseGuard = _Unguarded()


def ensure_lease_held(lease: LeaseGuard) -> None:
    """Called by adapters after any slow preparation, right before the request goes out."""
    if not lease.held():
        raise LeaseLost


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider answered. ``confirmed`` False: accepted, confirmation comes later."""

    confirmed: bool
    provider_ref: str | None = None
    summary: str = ""


class ChannelAdapter(Protocol):
    """Speaks to one provider of one channel; failures are raised as DeliveryError subclasses."""

    channel: Channel
    # Who this adapter sends through, recorded with every attempt: "sandbox" (a rehearsal,
    # never counted as an action), or the provider ("smtp", "phaxio", "x", …).
    provider: str
    # Whether a send whose outcome is unknown can be settled without risking a duplicate:
    # by asking the provider (find_earlier), or because the provider refuses a repeat.
    finds_earlier: bool

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        """What the provider holds of an earlier try of this delivery whose outcome is
        unknown: its answer, or None when it has nothing that went through (send again)."""
        ...

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        """Hand the delivery to the provider; ``ensure_lease_held(lease)`` right before
        anything goes on the wire after a slow preparation."""
        ...

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        """Ask about a delivery the provider accepted earlier (``delivery.provider_ref``).

        Returns ``confirmed=False`` while the provider is still working on it; raises a
        DeliveryError when it finally failed.
        """
        ...

    async def aclose(self) -> None: ...
