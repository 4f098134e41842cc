"""What passes in and out of the store (plain frozen dataclasses)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dispatcher.models import AttemptOutcome, Channel, DeliveryStatus, ErrorInfo


@dataclass(frozen=True, slots=True)
class NewAppeal:
    campaign_id: str
    supporter_name: str
    supporter_email: str
    supporter_country: str | None
    language: str
    subject: str
    body: str
    own_message: bool
    tweet: str | None
    expires_at: dt.datetime
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    target_id: str
    target_name: str
    salutation: str
    channel: Channel
    address: str


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    id: int
    target_id: str
    channel: Channel
    status: DeliveryStatus


@dataclass(frozen=True, slots=True)
class AppealReceipt:
    """The result of intake. ``already_counted`` is true when nothing new was created."""

    appeal_id: str
    created: tuple[DeliverySummary, ...]
    already_counted: tuple[DeliverySummary, ...]

    @property
    def is_repeat(self) -> bool:
        return not self.created


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """The outcome of handling one claimed delivery, recorded by ``Store.record_outcomes``.

    ``attempt_outcome`` closes the delivery's current attempt row (None for a status poll
    that settled nothing). ``next_attempt_at`` is when it is due again (queued or polling).
    """

    delivery_id: int
    status: DeliveryStatus
    next_attempt_at: dt.datetime | None = None
    provider_ref: str | None = None
    error: ErrorInfo | None = None
    attempt_outcome: AttemptOutcome | None = None
    response_summary: str | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    appeal_id: str
    campaign_id: str
    target_id: str
    channel: Channel
    address: str
    status: DeliveryStatus
    attempts: int
    provider_ref: str | None
    last_error: ErrorInfo | None
    next_attempt_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AttemptEntry:
    delivery_id: int
    number: int
    worker: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None
    error: ErrorInfo | None
    provider_ref: str | None
    response_summary: str | None
