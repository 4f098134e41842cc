"""HTML pages: the supporter's one-step page and status page, the operator dashboard.

Every form works without JavaScript (plain POST, redirect); scripts in /static only add live
updates. Templates autoescape: supporter-written text is untrusted everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dispatcher.campaigns import Campaign
from dispatcher.intake import AppealRequest, IntakeError, IntakeErrorKind, closed_error
from dispatcher.models import SENT_CHANNELS, Channel, DeliveryStatus, utcnow
from dispatcher.operations import (
    CANCELLABLE_FROM,
    REPORTED_KINDS,
    RETRYABLE_FROM,
    OperatorActionError,
    ReportedActionRequest,
    cancel_delivery,
    report_action,
    retry_delivery,
)
from dispatcher.reporting import BUCKETS, campaign_report
from dispatcher.web.api import (
    Context,
    accept_appeal,
    campaign_or_404,
    client_ip,
    public_campaign,
    reason,
)
from dispatcher.web.chart import delivery_chart
from dispatcher.web.errors import INTAKE_STATUS, ApiError
from dispatcher.web.security import (
    CSRF_COOKIE,
    OPERATOR_COOKIE,
    token_matches,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
CHANNEL_LABELS = {Channel.EMAIL: "Email", Channel.FAX: "Fax", Channel.TWITTER: "X (Twitter)"}
STATUS_WORDS = {
    "queued": "waiting to be sent",
    "sending": "sending now",
    "awaiting_confirmation": "sent, waiting for the fax line to confirm",
    "delivered": "delivered",
    "failed": "not delivered",
    "expired": "not delivered before the deadline",
    "cancelled": "cancelled",
}


def _page(
    request: Request,
    template: str,
    context: Context,
    values: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render with a fresh CSRF token (cookie + hidden field) for the page's forms."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or not context.csrf.valid(token, token):
        token = context.csrf.new_token()
    response = templates.TemplateResponse(
        request,
        template,
        {"csrf": token, "channel_labels": CHANNEL_LABELS, "status_words": STATUS_WORDS, **values},
        status_code=status_code,
    )
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


async def _form(request: Request, context: Context) -> dict[str, Any]:
    """The posted form, after the CSRF check (403 on failure)."""
    form = await request.form()
    if not context.csrf.valid(request.cookies.get(CSRF_COOKIE), str(form.get("csrf", ""))):
        raise ApiError(403, "the form expired or came from another site; reload the page")
    values: dict[str, Any] = {key: form.getlist(key) for key in form}
    return values


def _one(values: dict[str, Any], key: str) -> str:
    found = values.get(key) or [""]
    return str(found[0])


# ---------------------------------------------------------------- supporter pages


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, context: Context) -> HTMLResponse:
    return _page(request, "home.html", context, {"campaigns": list(context.catalog)})


@router.get("/c/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    request: Request, campaign_id: str, context: Context, lang: str | None = None
) -> HTMLResponse:
    campaign = campaign_or_404(context, campaign_id)
    language = lang if lang in campaign.letter else campaign.default_language
    return await _render_campaign(request, context, campaign, {"language": language})


async def _render_campaign(
    request: Request,
    context: Context,
    campaign: Campaign,
    form: dict[str, Any],
    *,
    error: IntakeError | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    report = await campaign_report(context.store, campaign)
    language = form.get("language") or campaign.default_language
    letter = campaign.letter.get(language) or campaign.letter[campaign.default_language]
    return _page(
        request,
        "campaign.html",
        context,
        {
            "campaign": campaign,
            "public": public_campaign(campaign, with_letters=True),
            "report": report,
            "form": form,
            "letter": letter,
            "language": language,
            "error": error,
            "notice": notice,
            "kinds": REPORTED_KINDS,
        },
        status_code=INTAKE_STATUS[error.kind] if error else 200,
    )


@router.post("/c/{campaign_id}", response_class=HTMLResponse)
async def campaign_submit(request: Request, campaign_id: str, context: Context) -> Response:
    """The one Send button: a plain form post, then the status page."""
    campaign = campaign_or_404(context, campaign_id)
    context.per_ip.check(client_ip(request), "address")
    values = await _form(request, context)
    form: dict[str, Any] = {
        key: _one(values, key)
        for key in ("name", "email", "country", "language", "message", "tweet")
    }
    form["picked"] = [str(v) for v in values.get("pick", [])]
    if not campaign.is_open():
        return await _render_campaign(
            request, context, campaign, form, error=closed_error(campaign)
        )
    pairs = [tuple(p.split(":", 1)) for p in form["picked"] if ":" in p]
    if not pairs:
        error = IntakeError(
            "channels", "choose at least one official and channel", IntakeErrorKind.INVALID
        )
        return await _render_campaign(request, context, campaign, form, error=error)
    sample = campaign.letter.get(form["language"])
    message = form["message"]
    if sample is not None and message.replace("\r\n", "\n").strip() == sample.body.strip():
        message = ""  # unchanged sample letter: store it as "the sample", not as own words
    try:
        receipt = await accept_appeal(
            context,
            AppealRequest(
                campaign_id=campaign.id,
                supporter_name=form["name"],
                supporter_email=form["email"],
                supporter_country=form["country"] or None,
                message=message or None,
                tweet=form["tweet"] or None,
                language=form["language"] or None,
                pairs=[(t, c) for t, c in pairs],
            ),
        )
    except IntakeError as exc:
        return await _render_campaign(request, context, campaign, form, error=exc)
    query = "?repeat=1" if receipt.is_repeat else ""
    return RedirectResponse(f"/a/{receipt.appeal_id}{query}", status_code=303)


@router.post("/c/{campaign_id}/reported", response_class=HTMLResponse)
async def reported_submit(request: Request, campaign_id: str, context: Context) -> Response:
    campaign = campaign_or_404(context, campaign_id)
    values = await _form(request, context)
    try:
        await report_action(
            context.store,
            context.catalog,
            ReportedActionRequest(
                campaign_id=campaign.id,
                target_id=_one(values, "target"),
                kind=_one(values, "kind"),
                supporter_name=_one(values, "name") or None,
            ),
        )
    except IntakeError as exc:
        return await _render_campaign(request, context, campaign, {}, error=exc)
    return await _render_campaign(
        request, context, campaign, {}, notice="Thank you: your action is counted."
    )


@router.get("/a/{appeal_id}", response_class=HTMLResponse)
async def appeal_page(
    request: Request, appeal_id: str, context: Context, repeat: int = 0
) -> HTMLResponse:
    campaign_id = await context.store.appeal_campaign(appeal_id)
    campaign = context.catalog.get(campaign_id) if campaign_id else None
    if campaign is None:
        raise ApiError(404, "no such appeal")
    entries = sorted(await context.store.list_deliveries(appeal_id=appeal_id), key=lambda e: e.id)
    report = await campaign_report(context.store, campaign)
    names = {t.id: t.name for t in campaign.targets}
    return _page(
        request,
        "appeal.html",
        context,
        {
            "campaign": campaign,
            "appeal_id": appeal_id,
            "deliveries": [
                {
                    "id": e.id,
                    "target": names.get(e.target_id, e.target_id),
                    "channel": CHANNEL_LABELS[e.channel],
                    "status": e.status.value,
                    "reason": reason(e),
                }
                for e in entries
            ],
            "settled": all(e.status.settled for e in entries),
            "report": report,
            "repeat": bool(repeat),
        },
    )


# ---------------------------------------------------------------- operator dashboard


@router.get("/operator", response_class=HTMLResponse)
async def operator_page(
    request: Request,
    context: Context,
    campaign: str = "",
    channel: str = "",
    status: str = "",
    target: str = "",
) -> HTMLResponse:
    if not context.is_operator(request):
        return _page(request, "operator_login.html", context, {"error": None})
    filters = {"campaign": campaign, "channel": channel, "status": status, "target": target}
    # Taken before reading the log: the live stream replays every change from here on, so
    # nothing that happens while this page renders is missed.
    rendered_at = utcnow()
    entries = await context.store.list_deliveries(
        campaign_id=campaign or None,
        status=DeliveryStatus(status) if status in DeliveryStatus._value2member_map_ else None,
        channel=Channel(channel) if channel in Channel._value2member_map_ else None,
        target_id=target or None,
        newest_first=True,
        limit=200,
    )
    campaigns = [c for c in context.catalog if not campaign or c.id == campaign]
    reports = [await campaign_report(context.store, c) for c in campaigns]
    return _page(
        request,
        "operator.html",
        context,
        {
            "filters": filters,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "entries": entries,
            "reports": reports,
            "buckets": BUCKETS,
            "all_campaigns": list(context.catalog),
            "channels": [c.value for c in SENT_CHANNELS],
            "statuses": [s.value for s in DeliveryStatus],
            "retryable": {s.value for s in RETRYABLE_FROM},
            "cancellable": {s.value for s in CANCELLABLE_FROM},
            "chart": delivery_chart(entries),
            "rendered_at": rendered_at.isoformat(),
        },
    )


@router.post("/operator/login", response_class=HTMLResponse)
async def operator_login(request: Request, context: Context) -> Response:
    expected = context.required_operator_token()
    values = await _form(request, context)
    token = _one(values, "token")
    if not token_matches(token, expected):
        return _page(
            request,
            "operator_login.html",
            context,
            {"error": "That token is not right."},
            status_code=401,
        )
    response = RedirectResponse("/operator", status_code=303)
    response.set_cookie(
        OPERATOR_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/operator/logout")
async def operator_logout(request: Request, context: Context) -> Response:
    await _form(request, context)
    response = RedirectResponse("/operator", status_code=303)
    response.delete_cookie(OPERATOR_COOKIE, path="/")
    return response


@router.post("/operator/deliveries/{delivery_id}/{action}")
async def operator_action(
    request: Request, delivery_id: int, action: str, context: Context
) -> Response:
    if not context.is_operator(request):
        raise ApiError(401, "sign in to the operator dashboard first")
    values = await _form(request, context)
    if action not in {"retry", "cancel"}:
        raise ApiError(404, f"no operator action {action!r}")
    perform = retry_delivery if action == "retry" else cancel_delivery
    try:
        await perform(context.store, delivery_id)
    except OperatorActionError as exc:
        raise ApiError(409, exc.message) from exc
    back = _one(values, "back")
    query = back if back and not back.startswith(("/", "\\")) and "://" not in back else ""
    return RedirectResponse(f"/operator?{query}" if query else "/operator", status_code=303)


@router.get("/operator/deliveries/{delivery_id}", response_class=HTMLResponse)
async def operator_delivery(request: Request, delivery_id: int, context: Context) -> HTMLResponse:
    if not context.is_operator(request):
        return _page(request, "operator_login.html", context, {"error": None})
    entry = await context.store.get_delivery(delivery_id)
    if entry is None:
        raise ApiError(404, f"no delivery {delivery_id}")
    attempts = await context.store.list_attempts(delivery_id)
    return _page(request, "operator_delivery.html", context, {"entry": entry, "attempts": attempts})
