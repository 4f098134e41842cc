"""The operator dashboard: sign-in, the live delivery log with totals, retry and cancel
(one delivery, or every one a filter selects), the supporter list and the audit log."""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dispatcher.i18n import N_, _, format_number, how_long, ngettext
from dispatcher.models import SENT_CHANNELS, DeliveryStatus, utcnow
from dispatcher.service import ServiceError, audit
from dispatcher.service.exports import supporters
from dispatcher.service.log import LogFilter, delivery_detail, delivery_page
from dispatcher.service.operator import (
    ACTIONS,
    CANCELLABLE_FROM,
    RETRYABLE_FROM,
    act_on_selection,
    cancel_delivery,
    delivered_recently,
    retry_delivery,
    selection_actionable,
)
from dispatcher.service.reporting import BUCKETS, campaign_report
from dispatcher.service.review import held_count
from dispatcher.service.sessions import (
    SignInThrottled,
    end_session,
    find_session,
    start_session,
    token_holder,
)
from dispatcher.service.x_accounts import x_app_capped
from dispatcher.settings import SHARED_OPERATOR
from dispatcher.web.chart import delivery_chart
from dispatcher.web.deps import ContextDep, DeliveryId, WebContext, client_ip
from dispatcher.web.errors import STATUS_OF, ApiError
from dispatcher.web.html import PostedForm, operator_js_words, render_page, sign_in_page

router = APIRouter(include_in_schema=False)
LOG_ROWS = 200
FILTERS = ("campaign", "channel", "status", "target")

# The report's columns, as the totals table heads them (translated there).
BUCKET_WORDS = (N_("delivered"), N_("failed"), N_("pending"), N_("cancelled"))
# A bucket whose name is not a word: how the totals table heads it.
BUCKET_LABELS = {"handed_off": N_("handed off (unverified)")}


def _done(done: str) -> str:
    """What an action did, said on the page it goes back to (?done=retry:17,
    ?done=bulk-retry:5)."""
    what, _sep, subject = done.partition(":")
    if not subject.isdigit():
        return ""
    n = int(subject)
    if what == "retry":
        return _("Delivery %(n)s is queued again and will be sent now.") % {"n": n}
    if what == "cancel":
        return _("Delivery %(n)s is cancelled: it will not be sent.") % {"n": n}
    if what == "bulk-retry":
        return ngettext(
            "%(num)s delivery in this selection is queued again and will be sent now.",
            "%(num)s deliveries in this selection are queued again and will be sent now.",
            n,
        ) % {"num": format_number(n)}
    if what == "bulk-cancel":
        return ngettext(
            "%(num)s delivery in this selection is cancelled: it will not be sent.",
            "%(num)s deliveries in this selection are cancelled: they will not be sent.",
            n,
        ) % {"num": format_number(n)}
    return ""


async def _summary(context: WebContext, log_filter: LogFilter) -> dict[str, Any]:
    """The totals and the chart for the filter: on the page, and redrawn as the log moves."""
    shown = [c.id for c in context.service.catalog if log_filter.campaign in (None, c.id)]
    delivered = await delivered_recently(context.service, log_filter)
    return {
        "reports": [await campaign_report(context.service, c) for c in shown],
        "buckets": BUCKETS,
        "bucket_labels": BUCKET_LABELS,
        "chart": delivery_chart(delivered),
        "status_filtered": log_filter.status is not None,
        "actionable": await selection_actionable(context.service, log_filter),
        "filtered": bool(log_filter.as_query()),
        "filters_posted": log_filter.as_query(),
        "x_capped": await x_app_capped(context.service),
        "embeds": {c: embed_snippet(context, c) for c in shown},
    }


def embed_snippet(context: WebContext, campaign_id: str) -> tuple[str, tuple[str, ...]]:
    """The HTML an organisation pastes into its own page to show a campaign's form, and
    the sites the campaign lets frame it."""
    campaign = context.service.catalog.get(campaign_id)
    origins = campaign.embed_origins if campaign else ()
    url = f"{context.service.public_url}/c/{quote(campaign_id)}/embed"
    title = campaign.title if campaign else campaign_id
    snippet = (
        f'<iframe src="{url}" title="{html.escape(title)}" width="100%" height="1800" '
        'style="border:0;max-width:48rem" loading="lazy"></iframe>'
    )
    return snippet, origins


async def page_filters(
    campaign: str = "", channel: str = "", status: str = "", target: str = ""
) -> dict[str, str]:
    """The log filter as the dashboard's form sends it (checked by _parse_filter)."""
    return {"campaign": campaign, "channel": channel, "status": status, "target": target}


PageFilters = Annotated[dict[str, str], Depends(page_filters)]


def _parse_filter(filters: dict[str, str]) -> tuple[LogFilter, ServiceError | None]:
    try:
        return LogFilter.parse(**filters), None
    except ServiceError as exc:  # shown above an unfiltered log, with the same sentence
        return LogFilter(), exc


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(
    request: Request, context: ContextDep, filters: PageFilters, done: str = ""
) -> HTMLResponse:
    operator = await context.operator(request)
    if operator is None:
        return sign_in_page(request, context)
    log_filter, error = _parse_filter(filters)
    # Taken before reading the log: the live stream replays every change from here on, so
    # nothing that happens while this page renders is missed.
    rendered_at = utcnow()
    page = await delivery_page(context.service, log_filter, limit=LOG_ROWS)
    values = {
        "operator": operator,
        "shared_operator": SHARED_OPERATOR,
        "filters": filters,
        "query": urlencode(log_filter.as_query()),
        "error": error,
        "entries": page.entries,
        "log_rows": LOG_ROWS,
        "all_campaigns": list(context.service.catalog),
        "channels": [c.value for c in SENT_CHANNELS],
        "statuses": [s.value for s in DeliveryStatus],
        "retryable": {s.value for s in RETRYABLE_FROM},
        "cancellable": {s.value for s in CANCELLABLE_FROM},
        "rendered_at": rendered_at.isoformat(),
        "done": _done(done),
        "audit": await audit.recent(context.service, limit=15),
        "held_count": await held_count(context.service),
        "audit_words": audit.ACTIONS,
        "operator_js_words": operator_js_words(),
        **await _summary(context, log_filter),
    }
    status_code = STATUS_OF[error.kind] if error else 200
    return render_page(request, "operator.html", context, values, status_code=status_code)


@router.get("/operator/summary", response_class=HTMLResponse)
async def operator_summary(
    request: Request, context: ContextDep, filters: PageFilters
) -> HTMLResponse:
    """The totals and the chart alone: the dashboard fetches them again as the log moves."""
    await context.signed_in(request)
    log_filter, _ = _parse_filter(filters)
    values = {"query": urlencode(log_filter.as_query()), **await _summary(context, log_filter)}
    return render_page(request, "operator_summary.html", context, values)


@router.post("/operator/login", response_class=HTMLResponse)
async def operator_login(request: Request, context: ContextDep) -> Response:
    """An operator's token for a session: the cookie holds a random session id, never the
    token. Each wrong token from an address waits longer; too many in an hour get 429 (on
    the same counter as the API's bearer tokens)."""
    tokens = context.required_operator_tokens()
    posted = await PostedForm.read(request, context)
    address = client_ip(request)
    try:
        operator = await token_holder(
            context.service,
            posted.one("token"),
            tokens,
            address=address,
            where="at the dashboard",
            first_delay=context.settings.operator_sign_in_delay_seconds,
        )
        if operator is None:
            values = {"error": _("That token is not right.")}
            return render_page(request, "operator_login.html", context, values, status_code=401)
    except SignInThrottled as exc:
        later = _("Too many wrong tokens. Try again in %(wait)s.")
        values = {"error": later % {"wait": how_long(exc.retry_after)}}
        return render_page(
            request,
            "operator_login.html",
            context,
            values,
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    lifetime = dt.timedelta(hours=context.settings.operator_session_hours)
    cookies = context.cookies
    # A session another page planted in this browser ends here; the new id is fresh.
    await end_session(context.service, request.cookies.get(cookies.operator))
    session_id = await start_session(
        context.service,
        operator,
        fingerprint=context.token_fingerprint(operator),
        lifetime=lifetime,
    )
    await audit.record(context.service, operator, "sign-in", "to the dashboard", address=address)
    response = RedirectResponse("/operator", status_code=303)
    max_age = math.ceil(lifetime.total_seconds())
    cookies.set(response, cookies.operator, session_id, max_age=max_age)
    # The form token was minted for no session: the next page mints one for this one.
    cookies.delete(response, cookies.csrf)
    return response


@router.post("/operator/logout")
async def operator_logout(request: Request, context: ContextDep) -> Response:
    await PostedForm.read(request, context)
    cookies = context.cookies
    session_id = request.cookies.get(cookies.operator)
    session = await find_session(context.service, session_id)
    await end_session(context.service, session_id)
    if session is not None:
        address = client_ip(request)
        await audit.record(
            context.service, session.operator, "sign-out", "of the dashboard", address=address
        )
    response = RedirectResponse("/operator", status_code=303)
    cookies.delete(response, cookies.operator)
    cookies.delete(response, cookies.csrf)
    return response


def _back(posted: PostedForm) -> str:
    """The log's filter to go back to (a query string, never another address)."""
    back = posted.one("back")
    return back if back and not back.startswith(("/", "\\")) and "://" not in back else ""


@router.post("/operator/deliveries/{delivery_id}/{action}")
async def operator_action(
    request: Request, delivery_id: DeliveryId, action: str, context: ContextDep
) -> Response:
    operator = await context.signed_in(request)
    posted = await PostedForm.read(request, context)
    if action not in ACTIONS:
        raise ApiError(404, f"no operator action {action!r}; accepted: retry, cancel")
    perform = retry_delivery if action == "retry" else cancel_delivery
    await perform(context.service, delivery_id, by=operator)
    done = urlencode({"done": f"{action}:{delivery_id}"})
    # Say what was done on the page it goes back to (post, redirect, get).
    if posted.one("from") == "detail":
        return RedirectResponse(f"/operator/deliveries/{delivery_id}?{done}", status_code=303)
    query = _back(posted)
    return RedirectResponse(f"/operator?{query}&{done}" if query else f"/operator?{done}", 303)


@router.post("/operator/bulk/{action}")
async def operator_bulk(request: Request, action: str, context: ContextDep) -> Response:
    """Retry or cancel every delivery the posted filter selects (the log's filter)."""
    operator = await context.signed_in(request)
    posted = await PostedForm.read(request, context)
    log_filter = LogFilter.parse(**{key: posted.one(key) for key in FILTERS})
    changed = await act_on_selection(context.service, log_filter, action, by=operator)
    query = urlencode({**log_filter.as_query(), "done": f"bulk-{action}:{changed}"})
    return RedirectResponse(f"/operator?{query}", status_code=303)


@router.get("/operator/deliveries/{delivery_id}", response_class=HTMLResponse)
async def operator_delivery(
    request: Request, delivery_id: DeliveryId, context: ContextDep, done: str = ""
) -> HTMLResponse:
    operator = await context.operator(request)
    if operator is None:
        return sign_in_page(request, context)
    detail = await delivery_detail(context.service, delivery_id)
    # Its page names the appeal and shows the address and the providers' answers.
    await audit.record(context.service, operator, "view", f"delivery {delivery_id}")
    values = {
        "entry": detail.entry,
        "attempts": detail.attempts,
        "retryable": {s.value for s in RETRYABLE_FROM},
        "cancellable": {s.value for s in CANCELLABLE_FROM},
        "done": _done(done),
        "operator_js_words": operator_js_words(),
    }
    return render_page(request, "operator_delivery.html", context, values)


@router.get("/operator/supporters", response_class=HTMLResponse)
async def operator_supporters(
    request: Request, context: ContextDep, campaign: str = "", q: str = ""
) -> HTMLResponse:
    """Supporters, searchable by part of a name or an email address, with exports."""
    operator = await context.operator(request)
    if operator is None:
        return sign_in_page(request, context)
    rows = await supporters(context.service, campaign=campaign or None, search=q, limit=500)
    searched = ", ".join(
        part
        for part in (f"campaign={campaign}" if campaign else "", f"search={q!r}" if q else "")
        if part
    )
    subject = f"the supporter list: {len(rows)} supporters ({searched or 'all campaigns'})"
    await audit.record(context.service, operator, "view", subject)
    values = {
        "rows": rows,
        "campaign": campaign,
        "q": q,
        "all_campaigns": list(context.service.catalog),
        "export_query": urlencode(
            {k: v for k, v in {"campaign": campaign, "search": q}.items() if v}
        ),
        "limit": 500,
    }
    return render_page(request, "operator_supporters.html", context, values)
