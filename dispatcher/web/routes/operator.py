"""Operator endpoints: the delivery log (paged, and live over SSE), retry, cancel, CSV."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from dispatcher.models import LogEntry, utcnow
from dispatcher.service import audit
from dispatcher.service.exports import (
    DELIVERY_COLUMNS,
    SUPPORTER_COLUMNS,
    deliveries_export,
    supporters_export,
)
from dispatcher.service.log import (
    MAX_PAGE,
    LogFilter,
    delivery_attempts,
    delivery_page,
    follow_deliveries,
)
from dispatcher.service.operator import cancel_delivery, describe, retry_delivery
from dispatcher.service.reporting import campaign_report, report_csv
from dispatcher.service.views import AttemptView
from dispatcher.web.deps import (
    ContextDep,
    Cursor,
    DeliveryId,
    LogFilterDep,
    OperatorDep,
    OperatorName,
    WebContext,
)
from dispatcher.web.errors import ApiError
from dispatcher.web.schemas import (
    DeliveryExport,
    DeliveryOut,
    DeliveryPage,
    SupporterExport,
    errors,
)

router = APIRouter(prefix="/api", tags=["operators"], dependencies=[OperatorDep])
OPERATOR_ERRORS = errors(401, 404, 422)


EXPORT_TYPES = {"csv": "text/csv", "json": "application/json"}


def _download(body: str, fmt: str, name: str) -> Response:
    """``fmt`` was checked by the service (one of csv, json)."""
    return Response(
        body,
        media_type=f"{EXPORT_TYPES[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@router.get(
    "/deliveries/export",
    response_class=Response,
    responses={
        200: {
            "model": DeliveryExport,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "one row per delivery: " + ", ".join(DELIVERY_COLUMNS),
        },
        **OPERATOR_ERRORS,
    },
)
async def export_deliveries(
    context: ContextDep,
    log_filter: LogFilterDep,
    operator: OperatorName,
    format: str = "csv",
) -> Response:
    """Every delivery the filter selects (not a page), oldest first, as CSV or JSON."""
    body = await deliveries_export(context.service, log_filter, format, by=operator)
    return _download(body, format, "deliveries")


@router.get(
    "/supporters",
    response_class=Response,
    responses={
        200: {
            "model": SupporterExport,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "one row per supporter and campaign: " + ", ".join(SUPPORTER_COLUMNS),
        },
        **OPERATOR_ERRORS,
    },
)
async def export_supporters(
    context: ContextDep,
    operator: OperatorName,
    campaign: str | None = None,
    search: str = "",
    format: str = "json",
) -> Response:
    """Supporters (whose data was not deleted), most recent first; ``search`` matches any
    part of a name or an email address. Each export is in the operators' audit log."""
    body = await supporters_export(
        context.service, format, campaign=campaign or None, search=search, by=operator
    )
    return _download(body, format, "supporters")


@router.get("/deliveries", response_model=DeliveryPage, responses=OPERATOR_ERRORS)
async def list_deliveries(
    context: ContextDep,
    log_filter: LogFilterDep,
    operator: OperatorName,
    cursor: Cursor = None,
    include: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> DeliveryPage:
    """The delivery log, newest first; ``next_cursor`` fetches the next page.

    ``include=attempts`` adds each delivery's attempts as ``attempts_detail``. Each page
    read is in the audit log (the live stream is not: it would fill it).
    """
    if include not in (None, "", "attempts"):
        raise ApiError(422, f"include {include!r} is not supported; accepted: attempts", "include")
    page = await delivery_page(context.service, log_filter, cursor=cursor, limit=limit)
    subject = f"{len(page.entries)} deliveries ({describe(log_filter)})" + (
        ", a later page" if cursor else ""
    )
    await audit.record(context.service, operator, "view", subject)
    rows = []
    for entry in page.entries:
        row = DeliveryOut.of(entry)
        if include == "attempts":
            attempts = await delivery_attempts(context.service, entry.id)
            row = row.model_copy(update={"attempts_detail": [AttemptView.of(a) for a in attempts]})
        rows.append(row)
    return DeliveryPage(deliveries=rows, next_cursor=page.next_cursor)


# How long a browser waits before reconnecting to a dropped stream (the `retry:` field),
# and how often an idle stream says it is still there (a comment line), so proxies keep it.
RECONNECT_MS = 2000
KEEP_ALIVE_SECONDS = 15


@router.get(
    "/deliveries/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "one `delivery` event (a delivery as in /api/deliveries) per change",
        },
        **OPERATOR_ERRORS,
    },
)
async def stream_deliveries(
    context: ContextDep, log_filter: LogFilterDep, since: str | None = None
) -> EventSourceResponse:
    """Server-Sent Events: one ``delivery`` event per observed change to a matching delivery.

    ``since`` (ISO 8601 with a zone, e.g. when a page was rendered) replays changes from
    then on, so a page never misses what happened between rendering and connecting.
    """
    start = _since(since)
    return EventSourceResponse(_events(context, log_filter, start), ping=KEEP_ALIVE_SECONDS)


def _since(value: str | None) -> dt.datetime:
    if not value:
        return utcnow()
    try:
        start = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"since {value!r} is not an ISO 8601 time", "since") from None
    if start.tzinfo is None:
        raise ApiError(422, f"since {value!r} needs a time zone offset", "since")
    return start


async def _events(
    context: WebContext, log_filter: LogFilter, since: dt.datetime
) -> AsyncIterator[ServerSentEvent]:
    """The stream's events; it ends when the client goes away (the response stops it),
    when the server shuts down, or when the service stops."""
    yield ServerSentEvent(retry=RECONNECT_MS)
    changes = follow_deliveries(context.service, log_filter, since=since, stop=context.stopping)
    async with contextlib.aclosing(changes):
        async for batch in changes:
            for entry in batch:
                yield delivery_event(entry)


def delivery_event(entry: LogEntry) -> ServerSentEvent:
    """A change to a delivery as the operator page reads it: event ``delivery``, the
    delivery as JSON, and an id naming the delivery and the moment of the change."""
    return ServerSentEvent(
        data=DeliveryOut.of(entry).model_dump_json(by_alias=True),
        event="delivery",
        id=f"{entry.id}-{entry.updated_at.timestamp()}",
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    responses=errors(401, 403, 404, 409),
)
async def post_retry(
    delivery_id: DeliveryId, context: ContextDep, operator: OperatorName
) -> DeliveryOut:
    """Queue a failed, expired, cancelled or waiting delivery to be sent now."""
    return DeliveryOut.of(await retry_delivery(context.service, delivery_id, by=operator))


@router.post(
    "/deliveries/{delivery_id}/cancel",
    response_model=DeliveryOut,
    responses=errors(401, 403, 404, 409),
)
async def post_cancel(
    delivery_id: DeliveryId, context: ContextDep, operator: OperatorName
) -> DeliveryOut:
    """Stop a queued, failed or expired delivery; one that went out cannot be recalled."""
    return DeliveryOut.of(await cancel_delivery(context.service, delivery_id, by=operator))


@router.get(
    "/campaigns/{campaign_id}/report.csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "campaign, target, channel, delivered, failed, pending, cancelled",
        },
        **errors(401, 404),
    },
)
async def get_report_csv(
    campaign_id: str, context: ContextDep, operator: OperatorName
) -> PlainTextResponse:
    """The report as CSV: one row per target × channel, and a total row per channel."""
    report = await campaign_report(context.service, campaign_id)
    await audit.record(context.service, operator, "export", f"report of {campaign_id} as csv")
    return PlainTextResponse(
        report_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-report.csv"'},
    )
