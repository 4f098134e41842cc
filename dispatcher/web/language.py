"""Which language a request is answered in: ``?lang=`` (remembered in a cookie), then the
cookie, then the browser's ``Accept-Language``, then English."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.i18n import DEFAULT, LANGUAGES, negotiate, speaking

LANG_COOKIE = "lang"
_YEAR = 365 * 24 * 3600


def choose(query: str, cookie_header: str, accept_language: str | None) -> tuple[str, bool]:
    """The language, and whether it was chosen now (``?lang=``: remember it)."""
    asked = parse_qs(query).get("lang", [""])[0].strip().lower()
    if asked in LANGUAGES:
        return asked, True
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:
        cookies = SimpleCookie()
    kept = cookies.get(LANG_COOKIE)
    if kept is not None and kept.value in LANGUAGES:
        return kept.value, False
    return negotiate(accept_language) or DEFAULT, False


class Language:
    """Sets the language for everything the request writes; answers vary by it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        language, chosen = choose(
            scope.get("query_string", b"").decode("latin-1"),
            headers.get("cookie", ""),
            headers.get("accept-language"),
        )

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Accept-Language")
                out.add_vary_header("Cookie")
                if chosen:
                    out.append(
                        "Set-Cookie",
                        f"{LANG_COOKIE}={language}; Path=/; Max-Age={_YEAR}; SameSite=Lax",
                    )
            await send(message)

        with speaking(language):
            await self.app(scope, receive, answer)
