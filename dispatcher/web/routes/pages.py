"""The supporter's pages: the one-step campaign page and the appeal's status page.

Every form works without JavaScript (plain POST, redirect); scripts in /static only add
live updates.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dispatcher import i18n
from dispatcher.i18n import N_, _
from dispatcher.service import ServiceError
from dispatcher.service.catalog import find_campaign
from dispatcher.service.consent import confirm_reply_to, disown_appeal
from dispatcher.service.forget import already_forgotten, check_forget_token, forget_appeal
from dispatcher.service.letters import postal_targets, printable_letter
from dispatcher.service.links import check_link
from dispatcher.service.reported import ReportedActionRequest, report_action
from dispatcher.service.reporting import campaign_report
from dispatcher.service.status import appeal_status
from dispatcher.web.appeal_form import (
    new_form,
    read_appeal_form,
    refusal,
    render_campaign,
    sent_values,
    share_links,
    submit_appeal_form,
)
from dispatcher.web.deps import CampaignDep, ContextDep, client_ip
from dispatcher.web.errors import ApiError
from dispatcher.web.html import PostedForm, render_page
from dispatcher.web.plain import plain_problems

router = APIRouter(include_in_schema=False)
LinkAction = Literal["confirm", "not-me"]


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, context: ContextDep) -> HTMLResponse:
    campaigns = list(context.service.catalog)
    return render_page(request, "home.html", context, {"campaigns": campaigns})


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    """Browsers ask for it whatever the page says: the site's icon."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/c/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    request: Request,
    campaign: CampaignDep,
    context: ContextDep,
    letter: str | None = None,
    reported: str | None = None,
    x: str | None = None,
) -> HTMLResponse:
    """The sample letter is in ``?letter=`` if the campaign has it, else in the page's
    language if it has that, else in the campaign's own."""
    form = new_form(request, campaign, letter)
    form["reported_thanks"] = REPORTED_THANKS.get(reported or "")
    notice = None
    if x == "declined":
        notice = _(
            "Your X account is not connected. You can still send your appeal: we will give "
            "you your post, ready to send from X yourself."
        )
    return await render_campaign(request, context, campaign, form, notice=notice)


@router.post("/c/{campaign_id}", response_class=HTMLResponse)
async def campaign_submit(request: Request, campaign: CampaignDep, context: ContextDep) -> Response:
    """The one Send button: a plain form post, then the sent page."""
    posted, trusted = await PostedForm.read_any(request, context)
    form = read_appeal_form(posted)
    return await submit_appeal_form(request, context, campaign, form, trusted=trusted)


@router.get("/c/{campaign_id}/sent", response_class=HTMLResponse)
async def appeal_sent(
    request: Request,
    campaign: CampaignDep,
    context: ContextDep,
    to: Annotated[list[str] | None, Query()] = None,
    confirm: int = 0,
    receipt: int = 0,
    post: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    """After Send: thanks, what was asked for, and what comes by email. It says the same
    whether the address had taken part before or not; only the address is told that."""
    values = await sent_values(request, context, campaign, to or [], post or [])
    values.update(confirm=bool(confirm), receipt=bool(receipt))
    return render_page(request, "sent.html", context, values)


REPORTED_FIELDS = ("target", "kind", "name", "email")
REPORTED_THANKS = {
    "new": N_("Thank you: your action is counted (once for each person, official and kind)."),
}


@router.post("/c/{campaign_id}/reported", response_class=HTMLResponse)
async def reported_submit(request: Request, campaign: CampaignDep, context: ContextDep) -> Response:
    """A call or letter the supporter reports: counted once per supporter, official and
    kind, then a redirect (reloading the page never reports it again)."""
    posted = await PostedForm.read(request, context)
    reported = {key: posted.one(key) for key in REPORTED_FIELDS}
    try:
        await context.per_ip.check(client_ip(request), "address")
        await context.per_email.check(reported["email"].strip().lower(), "email address")
        await report_action(
            context.service,
            ReportedActionRequest(
                campaign_id=campaign.id,
                target_id=reported["target"],
                kind=reported["kind"],
                supporter_email=reported["email"],
                supporter_name=reported["name"] or None,
            ),
        )
    except (ServiceError, ApiError) as exc:
        problem, status = refusal(exc)
        values = {"reported": reported, "reported_problem": plain_problems([problem])[0]}
        return await render_campaign(
            request, context, campaign, {"language": None, **values}, status_code=status
        )
    # The same words whether this supporter had reported it before: each counts once.
    return RedirectResponse(f"/c/{campaign.id}?reported=new#reported", status_code=303)


@router.get("/a/{appeal_id}", response_class=HTMLResponse)
async def appeal_page(
    request: Request, appeal_id: str, context: ContextDep, token: str = ""
) -> HTMLResponse:
    """The status link from the emails to the supporter (404 without its token)."""
    status = await appeal_status(context.service, appeal_id, token)
    campaign = find_campaign(context.service.catalog, status.campaign)
    report = await campaign_report(context.service, campaign.id)
    values = {
        "campaign": campaign,
        "appeal": status,
        "token": token,
        "postal": [(t.id, t.name_in(i18n.current())) for t in postal_targets(campaign)],
        "report": report,
        "share": share_links(
            campaign, str(request.url_for("campaign_page", campaign_id=campaign.id))
        ),
    }
    return render_page(request, "appeal.html", context, values)


@router.get("/a/{appeal_id}/letters/{target_file}", include_in_schema=False)
async def printable_letter_pdf(
    appeal_id: str, target_file: str, context: ContextDep, token: str = ""
) -> Response:
    """The supporter's letter to one official as a PDF for the post (the status link's
    token; 404 without it). Private: never cached."""
    target_id = target_file.removesuffix(".pdf")
    name, pdf = await printable_letter(context.service, appeal_id, token, target_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/a/{appeal_id}/forget", response_class=HTMLResponse)
async def forget_page(
    request: Request, appeal_id: str, context: ContextDep, token: str = ""
) -> HTMLResponse:
    """The signed link from a receipt: what deleting removes and keeps, and the button."""
    check_forget_token(context.service, appeal_id, token)
    if await already_forgotten(context.service, appeal_id):  # nothing left to delete
        values = {"appeal_id": appeal_id, "done": True, "earlier": True}
        return render_page(request, "forget.html", context, values)
    values = {"appeal_id": appeal_id, "token": token, "done": False}
    return render_page(request, "forget.html", context, values)


@router.post("/a/{appeal_id}/forget", response_class=HTMLResponse)
async def forget_submit(request: Request, appeal_id: str, context: ContextDep) -> HTMLResponse:
    posted = await PostedForm.read(request, context)
    await forget_appeal(context.service, appeal_id, posted.one("token"))
    return render_page(request, "forget.html", context, {"appeal_id": appeal_id, "done": True})


# The links emailed to the supporter that act: each page asks first (a mail scanner that
# opens links must not confirm or cancel anything), and the button posts.
@router.get("/a/{appeal_id}/{action}", response_class=HTMLResponse)
async def supporter_link_page(
    request: Request, appeal_id: str, action: LinkAction, context: ContextDep, token: str = ""
) -> HTMLResponse:
    check_link(context.service, action, appeal_id, token)
    values = {"appeal_id": appeal_id, "token": token, "action": action, "done": False}
    return render_page(request, "supporter_link.html", context, values)


@router.post("/a/{appeal_id}/{action}", response_class=HTMLResponse)
async def supporter_link_submit(
    request: Request, appeal_id: str, action: LinkAction, context: ContextDep
) -> HTMLResponse:
    posted = await PostedForm.read(request, context)
    token = posted.one("token")
    if action == "confirm":
        await confirm_reply_to(context.service, appeal_id, token)
    else:
        await disown_appeal(context.service, appeal_id, token)
    values = {"appeal_id": appeal_id, "action": action, "done": True}
    return render_page(request, "supporter_link.html", context, values)
