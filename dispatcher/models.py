"""Domain types shared by the layers (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Channel(enum.StrEnum):
    EMAIL = "email"
    FAX = "fax"
    TWITTER = "twitter"


SENT_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.FAX, Channel.TWITTER)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def settled(self) -> bool:
        return self in SETTLED_STATUSES


SETTLED_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.CANCELLED,
    }
)
PENDING_STATUSES = frozenset(
    {DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.AWAITING_CONFIRMATION}
)


class AttemptOutcome(enum.StrEnum):
    """How one attempt ended. ``unknown`` means the provider may have received it."""

    DELIVERED = "delivered"
    ACCEPTED = "accepted"  # handed to a provider that confirms later (fax)
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What the delivery log shows about a failure: our class, the provider's code and text."""

    error_class: str
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a worker holds a lease on, with everything needed to render and send it."""

    id: int
    appeal_id: str
    campaign_id: str
    target_id: str
    target_name: str
    salutation: str
    channel: Channel
    address: str
    status: DeliveryStatus
    attempts: int
    provider_ref: str | None
    expires_at: datetime
    supporter_name: str
    supporter_email: str
    supporter_country: str | None
    language: str
    subject: str
    body: str
    tweet: str | None
    earlier_outcome_unknown: bool
