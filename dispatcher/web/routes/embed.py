"""The campaign's form for the organisation's own site: ``/c/{campaign}/embed`` in an
iframe, without our header, framed only by the campaign's ``embed_origins``.

Inside another site's iframe our cookies are third-party, and browsers withhold them (our
form cookie is SameSite=Strict), so the embedded form carries a token signed for its
campaign and the time it was issued, and a post is taken only from our own origin (its
``Origin`` header): another site can neither read the token nor post as our page. An X
account cannot be connected inside an iframe (X refuses to be framed): its posts are
handed to the supporter, or go from the organisation's account, as the campaign says.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from dispatcher.campaigns import Campaign
from dispatcher.web.appeal_form import (
    Embed,
    new_form,
    read_appeal_form,
    render_campaign,
    sent_values,
    submit_appeal_form,
)
from dispatcher.web.deps import CampaignDep, ContextDep, WebContext
from dispatcher.web.html import PostedForm, render_page
from dispatcher.web.security import frame_headers

router = APIRouter(include_in_schema=False)


def _embed(context: WebContext, campaign: Campaign) -> Embed:
    return Embed(context.csrf.embed_token(campaign.id), frame_headers(campaign.embed_origins))


def _from_our_origin(request: Request, context: WebContext) -> bool:
    """The post came from a page of ours (the browser's Origin header, which a page on
    another site cannot set): the origin the request was addressed to, or the site's
    public address (behind a proxy that ends TLS, the two differ in scheme)."""
    origin = request.headers.get("origin", "")
    public = urlsplit(context.service.public_url)
    ours = {f"{request.url.scheme}://{request.url.netloc}", f"{public.scheme}://{public.netloc}"}
    return origin in ours


@router.get("/c/{campaign_id}/embed", response_class=HTMLResponse)
async def embed_page(
    request: Request, campaign: CampaignDep, context: ContextDep, letter: str | None = None
) -> HTMLResponse:
    """The one-step form, sized for an iframe."""
    form = new_form(request, campaign, letter)
    return await render_campaign(request, context, campaign, form, embed=_embed(context, campaign))


@router.post("/c/{campaign_id}/embed", response_class=HTMLResponse)
async def embed_submit(request: Request, campaign: CampaignDep, context: ContextDep) -> Response:
    """Send, from the embedded form: as on the campaign page, then the sent page (in the
    iframe). A stale or foreign post gets the form back, nothing sent."""
    raw = await request.form()
    posted = PostedForm({key: [str(v) for v in raw.getlist(key)] for key in raw})
    trusted = _from_our_origin(request, context) and context.csrf.embed_valid(
        posted.one("csrf"), campaign.id
    )
    form = read_appeal_form(posted)
    embed = _embed(context, campaign)
    return await submit_appeal_form(request, context, campaign, form, trusted=trusted, embed=embed)


@router.get("/c/{campaign_id}/embed/sent", response_class=HTMLResponse)
async def embed_sent(
    request: Request,
    campaign: CampaignDep,
    context: ContextDep,
    to: Annotated[list[str] | None, Query()] = None,
    confirm: int = 0,
    receipt: int = 0,
    post: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    """After Send, inside the iframe: the same words as the sent page."""
    values = await sent_values(request, context, campaign, to or [], post or [])
    values.update(confirm=bool(confirm), receipt=bool(receipt), embed=_embed(context, campaign))
    headers = frame_headers(campaign.embed_origins)
    return render_page(request, "sent.html", context, values, headers=headers)
