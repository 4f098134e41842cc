"""The public JSON shape of the delivery log, shared by the API and ``dispatcher log``."""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.models import AttemptEntry, Channel, DeliveryStatus, ErrorInfo, LogEntry


class ErrorView(BaseModel):
    """Why a delivery or attempt failed: our error class, the provider's code and text."""

    model_config = ConfigDict(frozen=True)

    error_class: str = Field(
        serialization_alias="class", description="TransientError, PermanentError, RateLimited…"
    )
    code: str | None = Field(description="the provider's own code (SMTP reply, HTTP status…)")
    message: str

    @classmethod
    def of(cls, error: ErrorInfo | None) -> ErrorView | None:
        if error is None:
            return None
        return cls(error_class=error.error_class, code=error.code, message=error.message)


class DeliveryView(BaseModel):
    """One delivery as the log shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    appeal_id: str
    campaign: str
    target: str
    channel: Channel
    address: str
    status: DeliveryStatus
    attempts: int = Field(description="attempts made so far")
    provider_ref: str | None
    last_error: ErrorView | None
    next_attempt_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, entry: LogEntry) -> Self:
        return cls(
            id=entry.id,
            appeal_id=entry.appeal_id,
            campaign=entry.campaign_id,
            target=entry.target_id,
            channel=entry.channel,
            address=entry.address,
            status=entry.status,
            attempts=entry.attempts,
            provider_ref=entry.provider_ref,
            last_error=ErrorView.of(entry.last_error),
            next_attempt_at=entry.next_attempt_at,
            updated_at=entry.updated_at,
        )


class AttemptView(BaseModel):
    """One try of a delivery; ``outcome`` is null while it is in flight."""

    model_config = ConfigDict(frozen=True)

    number: int
    worker: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None
    error: ErrorView | None
    provider_ref: str | None
    response_summary: str | None

    @classmethod
    def of(cls, attempt: AttemptEntry) -> AttemptView:
        return cls(
            number=attempt.number,
            worker=attempt.worker,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            outcome=attempt.outcome,
            error=ErrorView.of(attempt.error),
            provider_ref=attempt.provider_ref,
            response_summary=attempt.response_summary,
        )
