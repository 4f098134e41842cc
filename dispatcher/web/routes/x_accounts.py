"""A supporter's X account on the campaign page: off to X's consent page, back from it,
and the redirect to a handed-off post (which records that it was opened)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from dispatcher.service.x_accounts import (
    CONNECTION_COOKIE,
    finish_connection,
    open_hand_off,
    start_connection,
)
from dispatcher.web.deps import ContextDep

router = APIRouter(include_in_schema=False)


@router.get("/x/connect")
async def connect(campaign: str, context: ContextDep) -> RedirectResponse:
    """Off to X's consent page; the connection's id waits in a cookie for the Send button."""
    connection_id, consent_page = await start_connection(context.service, campaign)
    response = RedirectResponse(consent_page, status_code=303)
    response.set_cookie(
        CONNECTION_COOKIE,
        connection_id,
        max_age=int(context.settings.twitter.connect_wait_minutes * 60),
        httponly=True,
        # Lax, not Strict: the page X sends the supporter back to must see it.
        samesite="lax",
        secure=context.cookies.secure,
        path="/",
    )
    return response


@router.get("/x/connected")
async def connected(
    context: ContextDep,
    state: str = "",
    code: str | None = None,
    error: str | None = None,
) -> RedirectResponse:
    """Back from X: to the campaign page, which says whether the account is connected."""
    answer = await finish_connection(context.service, state=state, code=code, error=error)
    outcome = "connected" if answer.connection_id else "declined"
    response = RedirectResponse(
        f"/c/{answer.campaign_id}?{urlencode({'x': outcome})}#x-account", status_code=303
    )
    if answer.connection_id is None:
        response.delete_cookie(CONNECTION_COOKIE, path="/")
    return response


@router.get("/x/post")
async def post_on_x(
    context: ContextDep, appeal: str = "", target: str = "", text: str = "", token: str = ""
) -> RedirectResponse:
    """A handed-off post: recorded as opened, then X's page with the post prepared."""
    intent = await open_hand_off(
        context.service, appeal_id=appeal, target_id=target, text=text, token=token
    )
    return RedirectResponse(intent, status_code=303)
