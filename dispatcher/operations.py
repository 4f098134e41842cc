"""Service layer for the HTTP service: appeal status, operator actions, reported actions,
and provider status callbacks."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from dispatcher.campaigns import CampaignCatalog
from dispatcher.channels.fax import fax_verdict
from dispatcher.intake import IntakeError, IntakeErrorKind, clean_line, open_campaign
from dispatcher.models import DeliveryStatus, ErrorInfo, LogEntry, utcnow
from dispatcher.outcomes import confirmation_update
from dispatcher.retry import RetryPolicy
from dispatcher.store import Store

REPORTED_KINDS = ("call", "letter")
RETRYABLE_FROM = frozenset(
    {DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED, DeliveryStatus.QUEUED}
)
CANCELLABLE_FROM = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED})


class ActionErrorKind(enum.StrEnum):
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"


class OperatorActionError(Exception):
    def __init__(self, message: str, kind: ActionErrorKind) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


async def _change(
    store: Store,
    delivery_id: int,
    *,
    allowed: frozenset[DeliveryStatus],
    to: DeliveryStatus,
    verb: str,
    error: ErrorInfo | None = None,
) -> LogEntry:
    changed = await store.change_status(delivery_id, allowed_from=allowed, to=to, error=error)
    if changed is not None:
        return changed
    current = await store.get_delivery(delivery_id)
    if current is None:
        raise OperatorActionError(f"no delivery {delivery_id}", ActionErrorKind.NOT_FOUND)
    accepted = ", ".join(sorted(s.value for s in allowed))
    raise OperatorActionError(
        f"delivery {delivery_id} is {current.status.value}; only {accepted} deliveries can be "
        f"{verb}",
        ActionErrorKind.CONFLICT,
    )


async def retry_delivery(store: Store, delivery_id: int) -> LogEntry:
    """Queue a failed, expired, cancelled or waiting delivery to be sent now.

    The attempt count is kept (the log stays honest); if this try fails transiently and the
    cap is reached, the delivery ends failed again.
    """
    return await _change(
        store, delivery_id, allowed=RETRYABLE_FROM, to=DeliveryStatus.QUEUED, verb="retried"
    )


async def cancel_delivery(store: Store, delivery_id: int) -> LogEntry:
    """Stop a delivery that has not gone out. Sent or in-flight deliveries cannot be recalled."""
    return await _change(
        store,
        delivery_id,
        allowed=CANCELLABLE_FROM,
        to=DeliveryStatus.CANCELLED,
        verb="cancelled",
        error=ErrorInfo("Cancelled", None, "cancelled by an operator"),
    )


@dataclass(frozen=True, slots=True)
class ReportedActionRequest:
    campaign_id: str
    target_id: str
    kind: str
    supporter_name: str | None = None
    supporter_email: str | None = None


async def report_action(
    store: Store, catalog: CampaignCatalog, request: ReportedActionRequest
) -> int:
    """Store an action the supporter took themselves (a call, a posted letter)."""
    campaign = open_campaign(catalog, request.campaign_id)
    if campaign.target(request.target_id) is None:
        known = ", ".join(t.id for t in campaign.targets)
        raise IntakeError(
            "target",
            f"unknown target {request.target_id!r}; known targets: {known}",
            IntakeErrorKind.INVALID,
        )
    if request.kind not in REPORTED_KINDS:
        raise IntakeError(
            "kind",
            f"unknown action {request.kind!r}; accepted: {', '.join(REPORTED_KINDS)}",
            IntakeErrorKind.INVALID,
        )
    name = clean_line("supporter.name", request.supporter_name or "", limit=200, required=False)
    return await store.record_reported_action(
        campaign_id=campaign.id,
        target_id=request.target_id,
        kind=request.kind,
        supporter_name=name,
        supporter_email=request.supporter_email,
    )


async def apply_fax_callback(
    store: Store, policy: RetryPolicy, fax: dict[str, Any], *, poll_seconds: float
) -> bool:
    """Settle the delivery a verified status callback is about, exactly as polling would.

    Unknown fax ids, faxes not awaiting confirmation (settled, re-sent) and non-final
    statuses change nothing. Returns whether a delivery changed.
    """
    fax_id = fax.get("id")
    verdict = fax_verdict(fax, note=", confirmed by callback")
    if fax_id is None or verdict is None:
        return False
    delivery = await store.awaiting_fax(str(fax_id))
    if delivery is None:
        return False
    update = confirmation_update(policy, delivery, verdict, now=utcnow(), poll_seconds=poll_seconds)
    return await store.settle_awaiting(update, str(fax_id))
