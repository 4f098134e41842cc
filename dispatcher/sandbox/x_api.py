"""X (Twitter) API v2 stand-in: ``POST /2/tweets`` from the organisation's account (OAuth
1.0a user context) or a supporter's own (an OAuth 2.0 user token from
:mod:`dispatcher.sandbox.x_oauth`, which also serves the consent page, the token endpoint
and ``GET /2/users/me``).

The OAuth 1.0a header is checked for shape only (``OAuth ...`` with
``oauth_consumer_key=`` and ``oauth_signature=``); signatures are not verified. A
``Bearer`` token must be one the sandbox issued and still live. Every answer to a post
carries X's limit headers (``x-rate-limit-*`` per account and endpoint,
``x-app-limit-24hour-*`` for the app); past the app's cap, 429. Errors use X's problem shape
``{"title", "type", "status", "detail"}``. Checks run in this order: auth (401),
rate limit (429), injected failure (503), missing text (400), refused handle (403),
duplicate text (403), dropped connection, created (201).

Accepted tweets go to ``tweets`` and, one JSON object a line, to
``<directory>/tweets.jsonl``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dispatcher.logs import get_logger

from .faults import FaultCounter, Faults
from .http_server import HttpServer, drip, reset_connection, stall
from .x_oauth import OAuthState, authorize_decision, authorize_page, token, users_me

log = get_logger(__name__)

# An @mention as X parses it: 1-15 word characters not glued to a preceding word
# character (so "someone@example.org" mentions nobody).
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})")

# Tweet ids are shaped like X's snowflakes (milliseconds since X's epoch, shifted by
# 22 bits) so that ids from separate sandbox runs do not collide in a kept database.
_X_EPOCH_MS = 1288834974657

_TITLES = {
    400: "Invalid Request",
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


# The API exchanges kept for the contract tests: the latest ones only.
_KEPT_EXCHANGES = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OAuthHandler = Callable[[OAuthState, web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class Exchange:
    """One API request to the sandbox X and its answer, as they went over the wire."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


SUSPENDED = "Your account is suspended and is not permitted to access this feature."


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """An X API v2 problem response (``application/problem+json``, as X sends them)."""
    body = {"title": _TITLES[status], "type": "about:blank", "status": status, "detail": detail}
    return web.json_response(
        body, status=status, headers=headers, content_type="application/problem+json"
    )


def mentioned_handles(text: str) -> set[str]:
    """The @handles mentioned in ``text``, lower-cased and without '@'."""
    return {match.lower() for match in _MENTION.findall(text)}


class XApi(HttpServer):
    """The X API stand-in. Use ``start()``/``stop()``; tweets land in ``tweets``."""

    def __init__(
        self,
        directory: Path,
        *,
        faults: Faults,
        tweets: list[dict[str, str]],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.faults = faults
        self.tweets = tweets
        self._counter = FaultCounter(faults)
        self._directory = directory
        self._texts: set[tuple[str, str]] = set()
        self._last_id = 0
        self.oauth = OAuthState(token_seconds=faults.x_token_seconds)
        self.exchanges: list[Exchange] = []
        self._app_posts = 0
        self._day_ends = int(time.time()) + 86_400

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._record_exchange)
        app.router.add_post("/2/tweets", self._create)
        for method, path, handler in (
            ("GET", "/i/oauth2/authorize", authorize_page),
            ("POST", "/i/oauth2/authorize", authorize_decision),
            ("POST", "/2/oauth2/token", token),
            ("GET", "/2/users/me", users_me),
        ):
            app.router.add_route(method, path, self._with_oauth(handler))

    def _with_oauth(self, handler: OAuthHandler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await handler(self.oauth, request)

        return handle

    @web.middleware
    async def _record_exchange(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Keep each API request and its answer (the contract tests check both against
        X's published description); the consent page's HTML is not part of the API."""
        body = await request.read()
        response = await handler(request)
        if not request.path.startswith("/i/"):
            answer = response.body if isinstance(response, web.Response) else b""
            self.exchanges.append(
                Exchange(
                    request.method,
                    str(request.url),
                    dict(request.headers),
                    body,
                    response.status,
                    dict(response.headers),
                    bytes(answer) if isinstance(answer, bytes | bytearray) else b"",
                )
            )
            del self.exchanges[:-_KEPT_EXCHANGES]
        return response

    def _limits(self) -> dict[str, str]:
        """X's limit headers for the app's 24-hour cap (the sandbox keeps no per-15-minute
        window of its own: ``x-rate-limit-remaining`` mirrors the cap)."""
        left = max(0, self.faults.x_app_limit - self._app_posts)
        return {
            "x-rate-limit-limit": str(self.faults.x_app_limit),
            "x-rate-limit-remaining": str(left),
            "x-rate-limit-reset": str(self._day_ends),
            "x-app-limit-24hour-limit": str(self.faults.x_app_limit),
            "x-app-limit-24hour-remaining": str(left),
            "x-app-limit-24hour-reset": str(self._day_ends),
        }

    async def _create(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        account = self.oauth.user_of(authorization)
        if account is None and not _has_oauth_user_context(authorization):
            return problem(401, "Unauthorized")
        author = account.username if account is not None else "organisation"
        if self._app_posts >= self.faults.x_app_limit:
            return problem(429, "Too Many Requests", self._limits())
        if self._counter.take("not_enrolled"):
            return _not_enrolled()
        if self._counter.take("suspended"):
            return problem(
                403, "Your account is suspended and is not permitted to access this feature."
            )
        if self._counter.take("rate_limit"):
            headers = {"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0"}
            if self.faults.rate_limit_reset_seconds is not None:
                reset = int(time.time()) + self.faults.rate_limit_reset_seconds
                headers["x-rate-limit-reset"] = str(reset)
            return problem(429, "Too Many Requests", headers)
        if self._counter.take("fail"):
            return problem(503, "Service Unavailable (sandbox: injected)")
        if self._counter.take("reset"):
            reset_connection(request.transport)  # cut off mid-request: nothing posted
            return web.Response(status=400)

        text = await _read_text(request)
        if text is None:
            return problem(400, "The `text` field is required and must be a non-empty string.")
        if self.faults.refused_handle_in(mentioned_handles(text)) is not None:
            return problem(403, "You are not permitted to perform this action.")
        if (author, text) in self._texts:
            return problem(403, "You are not allowed to create a Tweet with duplicate content.")

        tweet = self._record(text, author)
        if self._counter.take("drop"):
            # Accepted and recorded, but the client never learns it: close the
            # connection now. The response returned below then fails to be written,
            # which aiohttp treats as a client disconnect (logged at debug level only).
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=201)
        if self._counter.take("garble"):
            return web.Response(status=201, text="<html>upstream answered</html>")
        if self._counter.take("no_id"):
            return web.json_response({"data": {"text": text}}, status=201)
        if self._counter.take("stall"):
            return await stall(request)
        posted = web.json_response(
            {"data": {"id": tweet["id"], "text": text, "edit_history_tweet_ids": [tweet["id"]]}},
            status=201,
            headers=self._limits(),
        )
        if self._counter.take("drip"):
            return await drip(request, posted, self.faults.drip_seconds)
        return posted

    def _record(self, text: str, author: str) -> dict[str, str]:
        tweet = {"id": self._next_id(), "text": text, "author": author, "received_at": _now_iso()}
        self._texts.add((author, text))
        self._app_posts += 1
        self.tweets.append(tweet)
        self._directory.mkdir(parents=True, exist_ok=True)
        with (self._directory / "tweets.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(tweet, ensure_ascii=False) + "\n")
        log.info("sandbox x: recorded a post", tweet_id=tweet["id"])
        return tweet

    def _next_id(self) -> str:
        snowflake = (int(time.time() * 1000) - _X_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, snowflake)
        return str(self._last_id)


def _not_enrolled() -> web.Response:
    """X's answer to an app without the access level posting needs."""
    body = {
        "title": "Client Forbidden",
        "type": "https://api.twitter.com/2/problems/client-forbidden",
        "status": 403,
        "detail": "When authenticating requests to the X API v2 endpoints, you must use keys "
        "and tokens from an X developer App that is attached to a Project.",
        "reason": "client-not-enrolled",
        "registration_url": "https://developer.x.com/en/docs/projects/overview",
    }
    return web.json_response(body, status=403, content_type="application/problem+json")


def _has_oauth_user_context(header: str) -> bool:
    return (
        header.startswith("OAuth ")
        and "oauth_consumer_key=" in header
        and "oauth_signature=" in header
    )


async def _read_text(request: web.Request) -> str | None:
    """The request's JSON ``text`` if it is a non-empty string, else None."""
    try:
        payload: Any = json.loads(await request.read())
    except ValueError:  # includes UnicodeDecodeError
        return None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None
    return text


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
