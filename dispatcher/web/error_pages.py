"""Error pages for people: what happened in plain words, and a way forward.

The API answers its errors in JSON (``web.errors``); a browser asking for a page gets
one of these instead, in the site's style, with the same status code.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from dispatcher.i18n import N_, _, how_long
from dispatcher.service.catalog import find_campaign
from dispatcher.service.errors import ServiceError
from dispatcher.web.html import render_page

_PAGES = {
    403: (
        N_("This page has expired"),
        N_(
            "For your safety, pages with forms expire after a while. Go back, reload the page, "
            "and try again."
        ),
    ),
    404: (
        N_("Page not found"),
        N_(
            "We could not find that page. If you typed the address, check it is right. If you "
            "followed a link to your appeal, the link may be incomplete."
        ),
    ),
    410: (
        N_("This campaign is closed"),
        N_(
            "Its deadline has passed, so appeals are no longer sent. Thank you for wanting to help."
        ),
    ),
    413: (
        N_("That was too much to send"),
        N_("What was sent is longer than we accept. Shorten your letter, and try again."),
    ),
    429: (N_("Please wait a moment"), N_("Too many tries came from here in a short time.")),
    500: (
        N_("Sorry, something went wrong on our side"),
        N_(
            "Nothing you did caused this, and it has been noted. Please try again in a few minutes."
        ),
    ),
    503: (
        N_("Sorry, the service is not available at the moment"),
        N_("Nothing you sent was saved. Please try again in a minute."),
    ),
}


# The operator pages while no operator is configured: `serve` prints their address, so
# whoever runs it comes here first.
_OPERATORS_OFF = (
    N_("The operator dashboard is switched off"),
    N_(
        "It switches on once operators are configured: set DISPATCHER_OPERATORS (named "
        "operators and their tokens) or DISPATCHER_OPERATOR_TOKEN, then restart the service. "
        "See config/example.env."
    ),
)


async def error_page(request: Request, status: int, headers: dict[str, str] | None) -> Response:
    heading, line = _PAGES.get(status, _PAGES[500] if status >= 500 else _PAGES[404])
    context = request.app.state.context
    operator_page = request.url.path == "/operator" or request.url.path.startswith("/operator/")
    if status == 404 and operator_page and not context.operator_tokens:
        heading, line = _OPERATORS_OFF
    lines = [_(line)]
    retry = (headers or {}).get("Retry-After", "")
    if retry.isdigit():
        lines.append(_("You can try again in %(wait)s.") % {"wait": how_long(int(retry))})
    values = {"heading": _(heading), "lines": lines, "campaign": _campaign_of(request)}
    return render_page(request, "error.html", context, values, status_code=status, headers=headers)


def _campaign_of(request: Request) -> object | None:
    """The campaign a /c/<id> path names, when there is one (for "Back to …")."""
    parts = request.url.path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "c":
        return None
    try:
        return find_campaign(request.app.state.context.service.catalog, parts[1])
    except ServiceError:
        return None
