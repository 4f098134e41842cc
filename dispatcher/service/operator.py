"""What operators do to a delivery: retry it now, or cancel it before it goes out."""

from __future__ import annotations

from dispatcher.models import DeliveryStatus, ErrorInfo, LogEntry
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError

RETRYABLE_FROM = frozenset(
    {DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED, DeliveryStatus.QUEUED}
)
CANCELLABLE_FROM = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED})


async def _change(
    service: Service,
    delivery_id: int,
    *,
    allowed: frozenset[DeliveryStatus],
    to: DeliveryStatus,
    verb: str,
    error: ErrorInfo | None = None,
) -> LogEntry:
    store = service.store
    changed = await store.change_status(delivery_id, allowed_from=allowed, to=to, error=error)
    if changed is not None:
        return changed
    current = await store.get_delivery(delivery_id)
    if current is None:
        raise ServiceError(ErrorKind.NOT_FOUND, f"no delivery {delivery_id}", "delivery_id")
    accepted = ", ".join(sorted(s.value for s in allowed))
    raise ServiceError(
        ErrorKind.CONFLICT,
        f"delivery {delivery_id} is {current.status.value}; only {accepted} deliveries can be "
        f"{verb}",
        "delivery_id",
    )


async def retry_delivery(service: Service, delivery_id: int) -> LogEntry:
    """Queue a failed, expired, cancelled or waiting delivery to be sent now.

    The attempt count is kept (the log stays honest); if this try fails transiently and the
    cap is reached, the delivery ends failed again. ServiceError: not found, or conflict.
    """
    return await _change(
        service, delivery_id, allowed=RETRYABLE_FROM, to=DeliveryStatus.QUEUED, verb="retried"
    )


async def cancel_delivery(service: Service, delivery_id: int) -> LogEntry:
    """Stop a delivery that has not gone out. Sent or in-flight deliveries cannot be recalled."""
    return await _change(
        service,
        delivery_id,
        allowed=CANCELLABLE_FROM,
        to=DeliveryStatus.CANCELLED,
        verb="cancelled",
        error=ErrorInfo("Cancelled", None, "cancelled by an operator"),
    )
