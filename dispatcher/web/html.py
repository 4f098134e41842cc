"""Rendering pages: templates, the CSRF token every form carries, reading a posted form.

Shared by the supporter pages and the operator dashboard. Templates autoescape:
supporter-written text is untrusted everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dispatcher import i18n
from dispatcher.channels.registry import CHANNEL_LABELS
from dispatcher.i18n import N_, _
from dispatcher.models import SENT_CHANNELS, Settlement, format_time
from dispatcher.web.deps import WebContext
from dispatcher.web.errors import ApiError

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
)
# {{ _("…") }} in a template is the message in the request's language (see i18n.py);
# new-style: {{ _("%(n)s actions", n=…) }} escapes its arguments.
_environment.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)
templates = Jinja2Templates(env=_environment)
templates.env.filters["when"] = format_time
templates.env.filters["date"] = i18n.format_date
templates.env.filters["number"] = i18n.format_number
# A channel as supporters read it, in the page's language ("Email", "X (Twitter)").
templates.env.filters["label"] = lambda channel: i18n.gettext(CHANNEL_LABELS[channel])
STATUS_WORDS = {
    "held": N_("waiting for the campaign's staff to read your letter"),
    "awaiting_supporter": N_("waiting for you to confirm your email address"),
    "queued": N_("waiting to be sent"),
    "sending": N_("sending now"),
    "awaiting_confirmation": N_("sent, waiting for the fax line to confirm"),
    "delivered": N_("delivered"),
    "failed": N_("not delivered"),
    "expired": N_("not delivered before the deadline"),
    "cancelled": N_("cancelled"),
    "handed_off": N_("ready for you to post on X yourself"),
}

# A delivery's status and channel as the operator pages name them (the log's own words,
# translated: "queued" is 排队中 on the Chinese pages).
OPERATOR_STATUS_WORDS = {
    "held": N_("held"),
    "awaiting_supporter": N_("awaiting_supporter"),
    "queued": N_("queued"),
    "sending": N_("sending"),
    "awaiting_confirmation": N_("awaiting_confirmation"),
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "expired": N_("expired"),
    "cancelled": N_("cancelled"),
    "handed_off": N_("handed_off"),
}
OPERATOR_CHANNEL_WORDS = {"email": N_("email"), "fax": N_("fax"), "twitter": N_("twitter")}


def operator_word(value: str) -> str:
    """A status or channel, as the operator pages show it in their language."""
    found = OPERATOR_STATUS_WORDS.get(value) or OPERATOR_CHANNEL_WORDS.get(value)
    return i18n.gettext(found) if found else value


templates.env.filters["op"] = operator_word

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
    """Render with a CSRF token (cookie + hidden field) for the page's forms, bound to
    the operator's session when there is one."""
    token = context.form_token(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "csrf": token,
            **_language_values(request),
            "channel_labels": CHANNEL_LABELS,
            "status_words": STATUS_WORDS,
            "translated_status_words": {k: i18n.gettext(v) for k, v in STATUS_WORDS.items()},
            "settlement_words": SETTLEMENT_WORDS,
            "settlement_notes": SETTLEMENT_NOTES,
            # Channels that go to the built-in sandbox: every page says so.
            "rehearsal_channels": [c for c in SENT_CHANNELS if context.service.rehearsing(c)],
            "channels_on": [c for c in SENT_CHANNELS if context.service.channel_on(c)],
            **values,
        },
        status_code=status_code,
        headers=headers,
    )
    context.cookies.set(response, context.cookies.csrf, token)
    return response


def _language_values(request: Request) -> dict[str, Any]:
    """What every page needs to speak the request's language and offer the other."""
    language = i18n.current()
    # The switch links to this page by its query alone: a path such as //evil.example/x
    # (a page not found) can never make it lead to another site.
    return {
        "lang": language,
        "html_lang": i18n.TAGS[language],
        "gap": i18n.sentence_gap(),  # between two sentences: none in Chinese
        "switch": [
            (code, i18n.NAMES[code], i18n.TAGS[code], f"?lang={code}")
            for code in i18n.LANGUAGES
            if code != language
        ],
    }


def sign_in_page(request: Request, context: WebContext) -> HTMLResponse:
    """What an operator page shows to someone not signed in."""
    return render_page(request, "operator_login.html", context, {"error": None})


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
        trusted = context.form_token_holds(request, str(form.get("csrf", "")))
        return cls({key: [str(v) for v in form.getlist(key)] for key in form}), trusted

    def one(self, key: str) -> str:
        """The first value of ``key``, or ''."""
        found = self._values.get(key) or [""]
        return found[0]

    def all(self, key: str) -> list[str]:
        return list(self._values.get(key, []))


def operator_js_words() -> dict[str, Any]:
    """What operator.js says and labels, in the page's language."""
    return {
        "retry": _("Retry"),
        "cancel": _("Cancel"),
        "ask_cancel": _("Cancel delivery %(id)s? It will not be sent."),
        "ask_bulk_cancel": _("Cancel %(n)s deliveries? They will not be sent."),
        "ask_bulk_retry": _("Retry %(n)s deliveries? They will be sent again now."),
        "ask_reject": _(
            "Reject this letter? None of its messages will be sent, and its supporter will be told."
        ),
        "delivery": _("Delivery"),
        "updated": _("updated"),
        "campaign": _("campaign"),
        "to": _("to"),
        "by": _("by"),
        "tries": _("tries"),
        "values": {k: operator_word(k) for k in (*OPERATOR_STATUS_WORDS, *OPERATOR_CHANNEL_WORDS)},
    }
