"""Review of supporter-written letters (campaigns with ``review_own_letters``): the
operator's page to read and approve or reject them, and the same in the JSON API."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dispatcher.i18n import current, format_number, ngettext
from dispatcher.models import format_time
from dispatcher.service import audit
from dispatcher.service.review import (
    Change,
    HeldAppeal,
    decide_letter,
    held_letters,
    letter_changes,
)
from dispatcher.web.deps import ContextDep, OperatorName, WebContext
from dispatcher.web.html import PostedForm, operator_js_words, render_page, sign_in_page
from dispatcher.web.schemas import (
    HeldLetterOut,
    ReviewDecisionIn,
    ReviewDecisionOut,
    ReviewOut,
    errors,
)

router = APIRouter()


@router.get("/operator/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page(
    request: Request, context: ContextDep, done: str = "", n: int = 0, why: str = ""
) -> HTMLResponse:
    operator = await context.operator(request)
    if operator is None:
        return sign_in_page(request, context)
    letters = await held_letters(context.service)
    await audit.record(context.service, operator, "view", _viewed(letters))
    values = {
        "letters": letters,
        "done": _done(done, n),
        "names": {
            c.id: {t.id: t.name_in(current()) for t in c.targets} for c in context.service.catalog
        },
        "changes": {held.appeal_id: _changes(context, held) for held in letters},
        "why": why,  # the letter whose Reject came without a reason
        "operator_js_words": operator_js_words(),
    }
    return render_page(request, "operator_review.html", context, values)


@router.post("/operator/review/{appeal_id}/{decision}", include_in_schema=False)
async def review_decision(
    request: Request, appeal_id: str, decision: str, context: ContextDep
) -> Response:
    operator = await context.signed_in(request)
    posted = await PostedForm.read(request, context)
    note = posted.one("note")[:500]
    if decision == "reject" and not note.strip():  # the page's field says why, beside it
        return RedirectResponse(
            f"/operator/review?why={quote(appeal_id)}#note-{quote(appeal_id)}", status_code=303
        )
    changed = await decide_letter(context.service, appeal_id, decision, by=operator, note=note)
    return RedirectResponse(f"/operator/review?done={decision}&n={changed}", status_code=303)


def _done(done: str, n: int) -> str:
    """What the decision did, said on the page it goes back to."""
    if done == "approve":
        return ngettext(
            "The letter is approved: its %(num)s message is being sent.",
            "The letter is approved: its %(num)s messages are being sent.",
            n,
        ) % {"num": format_number(n)}
    if done == "reject":
        return ngettext(
            "The letter is rejected: its %(num)s message will not be sent.",
            "The letter is rejected: its %(num)s messages will not be sent.",
            n,
        ) % {"num": format_number(n)}
    return ""


def _changes(context: WebContext, letter: HeldAppeal) -> list[Change]:
    """The letter against its campaign's sample in its language (all of it "added" if
    the campaign has no sample in that language)."""
    campaign = context.service.catalog.get(letter.campaign_id)
    sample = campaign.letter.get(letter.language) if campaign else None
    return letter_changes(sample.body if sample else "", letter.body)


def _viewed(letters: list[HeldAppeal]) -> str:
    """The audit subject for reading the letters (supporters' names and words)."""
    return f"{len(letters)} letters waiting for review"


def _out(letter: HeldAppeal) -> HeldLetterOut:
    return HeldLetterOut(
        appeal_id=letter.appeal_id,
        campaign=letter.campaign_id,
        supporter_name=letter.supporter_name,
        supporter_country=letter.supporter_country,
        language=letter.language,
        subject=letter.subject,
        body=letter.body,
        tweet=letter.tweet,
        created_at=format_time(letter.created_at),
        deliveries=[f"{target}:{channel.value}" for target, channel in letter.deliveries],
    )


@router.get("/api/review", response_model=ReviewOut, tags=["operators"], responses=errors(401, 404))
async def get_review(context: ContextDep, operator: OperatorName) -> ReviewOut:
    """Supporter-written letters waiting for review (campaigns with review_own_letters).
    Each request is in the audit log."""
    letters = await held_letters(context.service)
    await audit.record(context.service, operator, "view", _viewed(letters))
    return ReviewOut(letters=[_out(letter) for letter in letters])


@router.post(
    "/api/appeals/{appeal_id}/{decision}",
    response_model=ReviewDecisionOut,
    tags=["operators"],
    responses=errors(401, 403, 404, 409, 422),
)
async def post_decision(
    appeal_id: str,
    decision: str,
    context: ContextDep,
    operator: OperatorName,
    body: ReviewDecisionIn | None = None,
) -> ReviewDecisionOut:
    """``approve`` queues a held letter's deliveries; ``reject`` cancels them, with the
    ``note`` kept on them and in the audit log. 409 when nothing of it is held."""
    note = body.note if body else ""
    changed = await decide_letter(context.service, appeal_id, decision, by=operator, note=note)
    word = "approved" if decision == "approve" else "rejected"
    return ReviewDecisionOut(appeal_id=appeal_id, decision=word, deliveries=changed)
