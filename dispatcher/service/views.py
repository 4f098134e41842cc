"""The public JSON shape of the delivery log, shared by the API and ``dispatcher log``."""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.models import AttemptEntry, Channel, DeliveryStatus, LogEntry, Settlement


class ErrorView(BaseModel):
    """Why a delivery or attempt failed: our error class, the provider's code and text."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    error_class: str = Field(
        serialization_alias="class", description="TransientError, PermanentError, RateLimited…"
    )
    code: str | None = Field(description="the provider's own code (SMTP reply, HTTP status…)")
    message: str


class DeliveryView(BaseModel):
    """One delivery as the log shows it (read from a :class:`LogEntry`)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    appeal_id: str
    campaign: str = Field(validation_alias="campaign_id")
    target: str = Field(validation_alias="target_id")
    channel: Channel
    address: str
    status: DeliveryStatus
    attempts: int = Field(description="attempts made so far")
    provider_ref: str | None
    last_error: ErrorView | None
    next_attempt_at: dt.datetime
    updated_at: dt.datetime
    settlement: Settlement | None = Field(
        description="set when an earlier try's outcome was unknown (a crash, a lost "
        "connection): reconciled (the provider was asked and had it) or possible_duplicate "
        "(sent again to a provider that cannot be asked: email)"
    )
    provider: str | None = Field(
        description="where it goes or went: a provider (smtp, phaxio, sinch, telnyx, x), or "
        "sandbox (a rehearsal: never counted as an action)"
    )

    @classmethod
    def of(cls, entry: LogEntry) -> Self:
        return cls.model_validate(entry)


class AttemptView(BaseModel):
    """One try of a delivery; ``outcome`` is null while it is in flight."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    number: int
    worker: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None
    error: ErrorView | None
    provider_ref: str | None
    response_summary: str | None
    provider: str | None = Field(description="where this try went (sandbox: a rehearsal)")

    @classmethod
    def of(cls, attempt: AttemptEntry) -> Self:
        return cls.model_validate(attempt)
