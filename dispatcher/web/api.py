"""The JSON API. It validates shapes and maps errors; the service layer decides everything."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatcher.campaigns import Campaign
from dispatcher.intake import (
    AppealRequest,
    closed_error,
    submit_appeal,
    tweet_lengths,
)
from dispatcher.models import AppealReceipt, Channel, DeliveryStatus, LogEntry, utcnow
from dispatcher.operations import (
    ReportedActionRequest,
    cancel_delivery,
    report_action,
    retry_delivery,
)
from dispatcher.render.tweet import MAX_WEIGHTED_LENGTH
from dispatcher.reporting import attempt_json, campaign_report, log_entry_json, report_csv
from dispatcher.web.context import ServiceContext, get_context
from dispatcher.web.errors import ApiError, describe_validation
from dispatcher.web.security import read_limited_body

router = APIRouter()
Context = Annotated[ServiceContext, Depends(get_context)]


# ---------------------------------------------------------------- models


class SupporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    email: str
    country: str | None = None


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supporter: SupporterIn
    language: str | None = None
    message: str | None = None
    tweet: str | None = None
    targets: list[str] | None = None
    channels: list[str] | None = None
    idempotency_key: str | None = Field(default=None, max_length=128)


class ReportedSupporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    email: str | None = None


class ReportedActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    kind: str
    supporter: ReportedSupporterIn | None = None


class DeliveryOut(BaseModel):
    id: int
    target: str
    channel: str
    status: str


class AppealAccepted(BaseModel):
    appeal_id: str
    already_counted: bool
    deliveries: list[DeliveryOut]


# ---------------------------------------------------------------- helpers


def public_campaign(campaign: Campaign, *, with_letters: bool = False) -> dict[str, Any]:
    """What anyone may see: the case and the officials' public addresses."""
    data: dict[str, Any] = {
        "id": campaign.id,
        "title": campaign.title,
        "organisation": campaign.organisation,
        "summary": campaign.summary,
        "deadline": campaign.deadline.isoformat(),
        "open": campaign.is_open(),
        "languages": sorted(campaign.letter),
        "default_language": campaign.default_language,
        "tweet": campaign.tweet,
        "targets": [
            {
                "id": t.id,
                "name": t.name,
                "title": t.title,
                "salutation": t.salutation,
                "channels": [c.value for c in t.channels],
                "email": t.email,
                "fax": t.fax,
                "twitter": list(t.twitter),
                "phone": t.phone,
                "postal": t.postal,
            }
            for t in campaign.targets
        ],
    }
    if with_letters:
        data["letters"] = {
            lang: {"subject": letter.subject, "body": letter.body}
            for lang, letter in campaign.letter.items()
        }
    return data


def campaign_or_404(context: ServiceContext, campaign_id: str) -> Campaign:
    campaign = context.catalog.get(campaign_id)
    if campaign is None:
        raise ApiError(404, f"unknown campaign {campaign_id!r}", "campaign")
    return campaign


def receipt_json(receipt: AppealReceipt) -> dict[str, Any]:
    deliveries = [*receipt.created, *receipt.already_counted]
    return {
        "appeal_id": receipt.appeal_id,
        "already_counted": receipt.is_repeat,
        "deliveries": [
            {"id": d.id, "target": d.target_id, "channel": d.channel.value, "status": d.status}
            for d in sorted(deliveries, key=lambda d: d.id)
        ],
    }


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def require_operator(request: Request, context: Context) -> None:
    """Operator endpoints: 404 when no token is configured (disabled), 401 without it."""
    if not context.is_operator(request):
        raise ApiError(
            401,
            "operator token missing or wrong",
            headers={"WWW-Authenticate": 'Bearer realm="dispatcher operator"'},
        )


Operator = Depends(require_operator)


def reason(entry: LogEntry) -> str | None:
    """A plain-language reason for a delivery that did not arrive."""
    if entry.status in {DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED}:
        return entry.last_error.message if entry.last_error else entry.status.value
    if entry.status is DeliveryStatus.QUEUED and entry.last_error is not None:
        return f"will try again: {entry.last_error.message}"
    return None


# ---------------------------------------------------------------- public endpoints


async def accept_appeal(context: ServiceContext, appeal: AppealRequest) -> AppealReceipt:
    """Shared by the JSON API and the HTML form: the per-email limit, then intake."""
    context.per_email.check(appeal.supporter_email.strip().lower(), "email address")
    return await submit_appeal(context.store, context.catalog, appeal)


@router.post(
    "/api/campaigns/{campaign_id}/appeals",
    status_code=202,
    response_model=AppealAccepted,
    responses={
        200: {"description": "already counted"},
        404: {},
        410: {},
        413: {},
        422: {},
        429: {},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AppealIn.model_json_schema()}},
        }
    },
)
async def post_appeal(campaign_id: str, request: Request, context: Context) -> JSONResponse:
    """One step: the supporter's appeal to every chosen target over every chosen channel."""
    context.per_ip.check(client_ip(request), "address")
    campaign = campaign_or_404(context, campaign_id)
    body = await read_limited_body(request, context.settings.intake.max_body_bytes)
    if not campaign.is_open():
        raise closed_error(campaign)
    try:
        payload = AppealIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        field, message = describe_validation(list(exc.errors()))
        raise ApiError(422, message, field) from None
    receipt = await accept_appeal(
        context,
        AppealRequest(
            campaign_id=campaign_id,
            supporter_name=payload.supporter.name,
            supporter_email=payload.supporter.email,
            supporter_country=payload.supporter.country,
            targets=payload.targets or (),
            channels=payload.channels or (),
            message=payload.message,
            tweet=payload.tweet,
            language=payload.language,
            idempotency_key=payload.idempotency_key,
        ),
    )
    return JSONResponse(receipt_json(receipt), status_code=200 if receipt.is_repeat else 202)


@router.get("/api/appeals/{appeal_id}")
async def get_appeal(appeal_id: str, context: Context) -> dict[str, Any]:
    """A supporter's status page data: each delivery with a plain-language reason."""
    campaign_id = await context.store.appeal_campaign(appeal_id)
    if campaign_id is None:
        raise ApiError(404, "no such appeal", "appeal_id")
    entries = await context.store.list_deliveries(appeal_id=appeal_id)
    return {
        "appeal_id": appeal_id,
        "campaign": campaign_id,
        "deliveries": [
            {
                "id": e.id,
                "target": e.target_id,
                "channel": e.channel.value,
                "status": e.status.value,
                "reason": reason(e),
            }
            for e in sorted(entries, key=lambda e: e.id)
        ],
    }


@router.get("/api/campaigns")
async def list_campaigns(context: Context) -> dict[str, Any]:
    return {"campaigns": [public_campaign(c) for c in context.catalog]}


@router.get("/api/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str, context: Context) -> dict[str, Any]:
    return public_campaign(campaign_or_404(context, campaign_id), with_letters=True)


class TweetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, max_length=2000)
    name: str = Field(default="", max_length=200)


@router.post("/api/campaigns/{campaign_id}/tweet-length")
async def tweet_length(campaign_id: str, payload: TweetIn, context: Context) -> dict[str, Any]:
    """The live counter's source: the same weighting and composition the server enforces."""
    lengths = tweet_lengths(campaign_or_404(context, campaign_id), payload.text, payload.name)
    longest = max(lengths.values(), default=0)
    return {
        "weighted_length": longest,
        "limit": MAX_WEIGHTED_LENGTH,
        "fits": longest <= MAX_WEIGHTED_LENGTH,
        "targets": lengths,
    }


@router.get("/api/campaigns/{campaign_id}/report")
async def get_report(campaign_id: str, context: Context) -> dict[str, Any]:
    """The totals shared with officials (public)."""
    return await campaign_report(context.store, campaign_or_404(context, campaign_id))


@router.post("/api/campaigns/{campaign_id}/reported-actions", status_code=201)
async def post_reported_action(
    campaign_id: str, payload: ReportedActionIn, context: Context
) -> dict[str, Any]:
    """A call or posted letter the supporter made themselves, counted as self-reported."""
    supporter = payload.supporter or ReportedSupporterIn()
    action_id = await report_action(
        context.store,
        context.catalog,
        ReportedActionRequest(
            campaign_id=campaign_id,
            target_id=payload.target,
            kind=payload.kind,
            supporter_name=supporter.name,
            supporter_email=supporter.email,
        ),
    )
    return {
        "id": action_id,
        "campaign": campaign_id,
        "target": payload.target,
        "kind": payload.kind,
    }


# ---------------------------------------------------------------- operator endpoints


def _parse_enum(kind: type[Channel] | type[DeliveryStatus], value: str | None, field: str) -> Any:
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(v.value for v in kind)
        raise ApiError(422, f"{field} {value!r} is not one of: {accepted}", field) from None


@router.get("/api/deliveries", dependencies=[Operator])
async def list_deliveries(
    context: Context,
    campaign: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    target: str | None = None,
    cursor: str | None = None,
    include: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The delivery log, newest first; ``next_cursor`` fetches the next page."""
    if cursor is not None and not cursor.isdigit():
        raise ApiError(422, f"cursor {cursor!r} is not a cursor from a previous page", "cursor")
    if include not in (None, "", "attempts"):
        raise ApiError(422, f"include {include!r} is not supported; accepted: attempts", "include")
    entries = await context.store.list_deliveries(
        campaign_id=campaign or None,
        status=_parse_enum(DeliveryStatus, status, "status"),
        channel=_parse_enum(Channel, channel, "channel"),
        target_id=target or None,
        before_id=int(cursor) if cursor else None,
        newest_first=True,
        limit=limit + 1,
    )
    page, more = entries[:limit], len(entries) > limit
    rows = [log_entry_json(e) for e in page]
    if include == "attempts":
        for row in rows:
            row["attempts_detail"] = [
                attempt_json(a) for a in await context.store.list_attempts(row["id"])
            ]
    return {"deliveries": rows, "next_cursor": str(page[-1].id) if more and page else None}


@router.get("/api/deliveries/stream", dependencies=[Operator])
async def stream_deliveries(
    request: Request, context: Context, campaign: str | None = None, since: str | None = None
) -> StreamingResponse:
    """Server-Sent Events: one ``delivery`` event per observed state change.

    ``since`` (ISO 8601, e.g. when a page was rendered) replays changes from then on, so a
    page never misses what happened between rendering and connecting.
    """
    start = utcnow()
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            raise ApiError(422, f"since {since!r} is not an ISO 8601 time", "since") from None
        if start.tzinfo is None:
            raise ApiError(422, f"since {since!r} needs a time zone offset", "since")
    return StreamingResponse(
        delivery_events(request, context, campaign or None, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def delivery_events(
    request: Request,
    context: ServiceContext,
    campaign: str | None,
    since: dt.datetime,
    interval: float = 0.5,
) -> AsyncIterator[str]:
    seen: set[tuple[int, str]] = set()
    yield "retry: 2000\n\n"
    while not context.stopping.is_set() and not await request.is_disconnected():
        fresh = [
            e
            for e in await context.store.list_deliveries(campaign_id=campaign, updated_since=since)
            if (e.id, e.updated_at.isoformat()) not in seen
        ]
        for entry in fresh:
            seen.add((entry.id, entry.updated_at.isoformat()))
            since = max(since, entry.updated_at)
            data = json.dumps(log_entry_json(entry), ensure_ascii=False)
            event_id = f"{entry.id}-{entry.updated_at.timestamp()}"
            yield f"id: {event_id}\nevent: delivery\ndata: {data}\n\n"
        if not fresh:
            yield ": idle\n\n"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(context.stopping.wait(), timeout=interval)


@router.post("/api/deliveries/{delivery_id}/retry", dependencies=[Operator])
async def post_retry(delivery_id: int, context: Context) -> dict[str, Any]:
    return log_entry_json(await retry_delivery(context.store, delivery_id))


@router.post("/api/deliveries/{delivery_id}/cancel", dependencies=[Operator])
async def post_cancel(delivery_id: int, context: Context) -> dict[str, Any]:
    return log_entry_json(await cancel_delivery(context.store, delivery_id))


@router.get("/api/campaigns/{campaign_id}/report.csv", dependencies=[Operator])
async def get_report_csv(campaign_id: str, context: Context) -> PlainTextResponse:
    report = await campaign_report(context.store, campaign_or_404(context, campaign_id))
    return PlainTextResponse(
        report_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-report.csv"'},
    )


# ---------------------------------------------------------------- health and metrics


@router.get("/healthz")
async def healthz(context: Context) -> JSONResponse:
    """Database reachable, and the in-process worker (if any) still running."""
    checks: dict[str, str] = {}
    healthy = True
    try:
        await context.store.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        checks["database"] = f"unreachable: {type(exc).__name__}"
        healthy = False
    task = context.worker_task
    if task is None:
        checks["worker"] = "not in this process (--no-worker)"
    elif task.done():
        checks["worker"] = "stopped"
        healthy = False
    else:
        checks["worker"] = "running"
    return JSONResponse(
        {"status": "ok" if healthy else "unhealthy", **checks}, status_code=200 if healthy else 503
    )


@router.get("/metrics")
async def metrics(context: Context) -> Response:
    return Response(
        await context.metrics.render(context.store),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
