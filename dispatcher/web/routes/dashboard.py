"""The operator dashboard: sign-in, the live delivery log with totals, retry and cancel."""

from __future__ import annotations

import datetime as dt
import math
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dispatcher.models import SENT_CHANNELS, DeliveryStatus, utcnow
from dispatcher.service import ServiceError
from dispatcher.service.log import LogFilter, delivery_detail, delivery_page
from dispatcher.service.operator import (
    CANCELLABLE_FROM,
    RETRYABLE_FROM,
    cancel_delivery,
    retry_delivery,
)
from dispatcher.service.reporting import BUCKETS, campaign_report
from dispatcher.service.sessions import (
    SignInThrottled,
    check_sign_in_allowed,
    end_session,
    sign_in_failed,
    start_session,
)
from dispatcher.web.chart import delivery_chart
from dispatcher.web.deps import ContextDep, DeliveryId, client_ip
from dispatcher.web.errors import STATUS_OF, ApiError
from dispatcher.web.html import PostedForm, render_page
from dispatcher.web.security import OPERATOR_COOKIE, token_matches

router = APIRouter(include_in_schema=False)
LOG_ROWS = 200


# What an action did, said on the page it returns to (?done=retry:17).
DONE_WORDS = {
    "retry": "Delivery {} is queued again and will be sent now.",
    "cancel": "Delivery {} is cancelled: it will not be sent.",
}


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(
    request: Request,
    context: ContextDep,
    campaign: str = "",
    channel: str = "",
    status: str = "",
    target: str = "",
    done: str = "",
) -> HTMLResponse:
    if not await context.is_operator(request):
        return render_page(request, "operator_login.html", context, {"error": None})
    filters = {"campaign": campaign, "channel": channel, "status": status, "target": target}
    error: ServiceError | None = None
    try:
        log_filter = LogFilter.parse(**filters)
    except ServiceError as exc:  # shown above an unfiltered log, with the same sentence
        error, log_filter = exc, LogFilter()
    # Taken before reading the log: the live stream replays every change from here on, so
    # nothing that happens while this page renders is missed.
    rendered_at = utcnow()
    page = await delivery_page(context.service, log_filter, limit=LOG_ROWS)
    shown = [c.id for c in context.service.catalog if log_filter.campaign in (None, c.id)]
    reports = [await campaign_report(context.service, campaign_id) for campaign_id in shown]
    values = {
        "filters": filters,
        "query": urlencode(log_filter.as_query()),
        "error": error,
        "entries": page.entries,
        "reports": reports,
        "buckets": BUCKETS,
        "all_campaigns": list(context.service.catalog),
        "channels": [c.value for c in SENT_CHANNELS],
        "statuses": [s.value for s in DeliveryStatus],
        "retryable": {s.value for s in RETRYABLE_FROM},
        "cancellable": {s.value for s in CANCELLABLE_FROM},
        "chart": delivery_chart(page.entries),
        "rendered_at": rendered_at.isoformat(),
        "done": DONE_WORDS.get(done.partition(":")[0], "").format(done.partition(":")[2]),
    }
    status_code = STATUS_OF[error.kind] if error else 200
    return render_page(request, "operator.html", context, values, status_code=status_code)


@router.post("/operator/login", response_class=HTMLResponse)
async def operator_login(request: Request, context: ContextDep) -> Response:
    """The token for a session: the cookie holds a random session id, never the token.
    Each wrong token from an address waits longer; too many in an hour get 429."""
    expected = context.required_operator_token()
    posted = await PostedForm.read(request, context)
    address = client_ip(request)
    try:
        await check_sign_in_allowed(context.service, address)
        if not token_matches(posted.one("token"), expected):
            await sign_in_failed(
                context.service,
                address,
                first_delay=context.settings.operator_sign_in_delay_seconds,
            )
            values = {"error": "That token is not right."}
            return render_page(request, "operator_login.html", context, values, status_code=401)
    except SignInThrottled as exc:
        wait = exc.retry_after
        later = f"{math.ceil(wait / 60)} minutes" if wait >= 90 else f"{wait} seconds"
        values = {"error": f"Too many wrong tokens. Try again in {later}."}
        return render_page(
            request,
            "operator_login.html",
            context,
            values,
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    lifetime = dt.timedelta(hours=context.settings.operator_session_hours)
    session_id = await start_session(context.service, lifetime=lifetime)
    response = RedirectResponse("/operator", status_code=303)
    response.set_cookie(
        OPERATOR_COOKIE,
        session_id,
        max_age=math.ceil(lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        # https as the client sees it: behind a trusted proxy, its X-Forwarded-Proto.
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/operator/logout")
async def operator_logout(request: Request, context: ContextDep) -> Response:
    await PostedForm.read(request, context)
    await end_session(context.service, request.cookies.get(OPERATOR_COOKIE))
    response = RedirectResponse("/operator", status_code=303)
    response.delete_cookie(OPERATOR_COOKIE, path="/")
    return response


@router.post("/operator/deliveries/{delivery_id}/{action}")
async def operator_action(
    request: Request, delivery_id: DeliveryId, action: str, context: ContextDep
) -> Response:
    if not await context.is_operator(request):
        raise ApiError(401, "sign in to the operator dashboard first")
    posted = await PostedForm.read(request, context)
    if action not in {"retry", "cancel"}:
        raise ApiError(404, f"no operator action {action!r}")
    perform = retry_delivery if action == "retry" else cancel_delivery
    await perform(context.service, delivery_id)
    back = posted.one("back")
    query = back if back and not back.startswith(("/", "\\")) and "://" not in back else ""
    # Say what was done on the page it goes back to (post, redirect, get).
    done = urlencode({"done": f"{action}:{delivery_id}"})
    query = f"{query}&{done}" if query else done
    return RedirectResponse(f"/operator?{query}", status_code=303)


@router.get("/operator/deliveries/{delivery_id}", response_class=HTMLResponse)
async def operator_delivery(
    request: Request, delivery_id: DeliveryId, context: ContextDep
) -> HTMLResponse:
    if not await context.is_operator(request):
        return render_page(request, "operator_login.html", context, {"error": None})
    detail = await delivery_detail(context.service, delivery_id)
    values = {"entry": detail.entry, "attempts": detail.attempts}
    return render_page(request, "operator_delivery.html", context, values)
