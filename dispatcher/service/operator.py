"""What operators do to deliveries: retry one now, or cancel it before it goes out; or
the same for every delivery a log filter selects. Each action is in the audit log."""

from __future__ import annotations

import datetime as dt

from dispatcher.models import Channel, DeliveryStatus, ErrorInfo, LogEntry, utcnow
from dispatcher.service import audit
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.service.log import LogFilter
from dispatcher.store.operators import Selection

RETRYABLE_FROM = frozenset(
    {DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED, DeliveryStatus.QUEUED}
)
CANCELLABLE_FROM = frozenset(
    {
        DeliveryStatus.QUEUED,
        DeliveryStatus.AWAITING_SUPPORTER,
        DeliveryStatus.FAILED,
        DeliveryStatus.EXPIRED,
    }
)
CANCELLED_BY_OPERATOR = ErrorInfo("Cancelled", None, "cancelled by an operator")
# action: (the statuses it applies to, the status it leads to, its past tense, the
# reason it leaves on the delivery)
ACTIONS = {
    "retry": (RETRYABLE_FROM, DeliveryStatus.QUEUED, "retried", None),
    "cancel": (CANCELLABLE_FROM, DeliveryStatus.CANCELLED, "cancelled", CANCELLED_BY_OPERATOR),
}


async def _change(service: Service, delivery_id: int, action: str, by: str) -> LogEntry:
    allowed, to, verb, error = ACTIONS[action]
    store = service.for_operators
    changed = await store.change_status(delivery_id, allowed_from=allowed, to=to, error=error)
    if changed is not None:
        await audit.record(service, by, action, f"delivery {delivery_id}")
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


async def retry_delivery(service: Service, delivery_id: int, *, by: str) -> LogEntry:
    """Queue a failed, expired, cancelled or waiting delivery to be sent now (``by``: the
    operator, for the audit log).

    The attempt count is kept (the log stays honest); if this try fails transiently and the
    cap is reached, the delivery ends failed again. ServiceError: not found, or conflict.
    """
    return await _change(service, delivery_id, "retry", by)


async def cancel_delivery(service: Service, delivery_id: int, *, by: str) -> LogEntry:
    """Stop a delivery that has not gone out. Sent or in-flight deliveries cannot be recalled."""
    return await _change(service, delivery_id, "cancel", by)


def _selection(log_filter: LogFilter) -> Selection:
    return Selection(log_filter.campaign, log_filter.status, log_filter.channel, log_filter.target)


def describe(log_filter: LogFilter) -> str:
    """A filter in words for the audit log: 'status=failed, campaign=ua-61-21' or 'all'."""
    query = log_filter.as_query()
    return ", ".join(f"{key}={value}" for key, value in query.items()) or "all deliveries"


async def selection_actionable(service: Service, log_filter: LogFilter) -> dict[str, int]:
    """How many of the filtered deliveries each action would change."""
    counts = await service.for_operators.count_selection(_selection(log_filter))
    return {
        action: sum(n for status, n in counts.items() if status in allowed)
        for action, (allowed, *_) in ACTIONS.items()
    }


async def act_on_selection(service: Service, log_filter: LogFilter, action: str, *, by: str) -> int:
    """Retry or cancel every filtered delivery the action applies to, at once; the others
    are left as they are. Returns how many changed."""
    if action not in ACTIONS:
        raise ServiceError(
            ErrorKind.NOT_FOUND, f"no operator action {action!r}; accepted: retry, cancel", "action"
        )
    allowed, to, _, error = ACTIONS[action]
    changed = await service.for_operators.change_selection(
        _selection(log_filter), allowed_from=allowed, to=to, now=utcnow(), error=error
    )
    await audit.record(service, by, action, f"{changed} deliveries ({describe(log_filter)})")
    return changed


async def delivered_recently(
    service: Service, log_filter: LogFilter, *, hours: int = 48
) -> list[tuple[Channel, dt.datetime]]:
    """When each filtered delivery delivered in the last ``hours`` arrived (for the chart;
    the filter's status is ignored)."""
    since = utcnow() - dt.timedelta(hours=hours)
    return await service.for_operators.delivered_times(_selection(log_filter), since=since)
