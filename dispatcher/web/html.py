"""Rendering pages: templates, the CSRF token every form carries, reading a posted form.

Shared by the supporter pages and the operator dashboard. Templates autoescape:
supporter-written text is untrusted everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dispatcher.channels.registry import CHANNEL_LABELS
from dispatcher.models import Settlement, format_time
from dispatcher.web.deps import WebContext
from dispatcher.web.errors import ApiError
from dispatcher.web.security import CSRF_COOKIE

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["when"] = format_time
STATUS_WORDS = {
    "queued": "waiting to be sent",
    "sending": "sending now",
    "awaiting_confirmation": "sent, waiting for the fax line to confirm",
    "delivered": "delivered",
    "failed": "not delivered",
    "expired": "not delivered before the deadline",
    "cancelled": "cancelled",
}


# How a delivery was settled after a try whose outcome was unknown (operator pages).
SETTLEMENT_WORDS = {
    Settlement.RECONCILED.value: "reconciled",
    Settlement.POSSIBLE_DUPLICATE.value: "possible duplicate",
}
SETTLEMENT_NOTES = {
    Settlement.RECONCILED.value: "An earlier try's outcome was unknown (a worker stopped, or the "
    "connection dropped); the provider was asked and already had it, so it was not sent again.",
    Settlement.POSSIBLE_DUPLICATE.value: "An earlier try's outcome was unknown (a worker stopped, "
    "or the connection dropped) and email cannot be asked: it was sent again with the same "
    "Message-ID, so the official may have two copies. It is counted once.",
}


def render_page(
    request: Request,
    template: str,
    context: WebContext,
    values: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render with a fresh CSRF token (cookie + hidden field) for the page's forms."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or not context.csrf.valid(token, token):
        token = context.csrf.new_token()
    response = templates.TemplateResponse(
        request,
        template,
        {
            "csrf": token,
            "channel_labels": CHANNEL_LABELS,
            "status_words": STATUS_WORDS,
            "settlement_words": SETTLEMENT_WORDS,
            "settlement_notes": SETTLEMENT_NOTES,
            **values,
        },
        status_code=status_code,
        headers=headers,
    )
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


class PostedForm:
    """A form posted from one of our pages, its CSRF token checked."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    @classmethod
    async def read(cls, request: Request, context: WebContext) -> PostedForm:
        """The posted form; 403 when its token is missing, expired or from another site."""
        posted, trusted = await cls.read_any(request, context)
        if not trusted:
            raise ApiError(403, "the form expired or came from another site; reload the page")
        return posted

    @classmethod
    async def read_any(cls, request: Request, context: WebContext) -> tuple[PostedForm, bool]:
        """The posted form, and whether its token holds (a page that can show the form
        again with what was typed uses the values either way, and acts only if it does)."""
        form = await request.form()
        trusted = context.csrf.valid(request.cookies.get(CSRF_COOKIE), str(form.get("csrf", "")))
        return cls({key: [str(v) for v in form.getlist(key)] for key in form}), trusted

    def one(self, key: str) -> str:
        """The first value of ``key``, or ''."""
        found = self._values.get(key) or [""]
        return found[0]

    def all(self, key: str) -> list[str]:
        return list(self._values.get(key, []))
