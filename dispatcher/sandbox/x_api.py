"""X (Twitter) API v2 stand-in: ``POST /2/tweets`` with OAuth 1.0a user context.

The OAuth header is checked for shape only (``OAuth ...`` with ``oauth_consumer_key=``
and ``oauth_signature=``); signatures are not verified. Errors use X's problem shape
``{"title", "type", "status", "detail"}``. Checks run in this order: auth (401),
rate limit (429), injected failure (503), missing text (400), refused handle (403),
duplicate text (403), dropped connection, created (201).

Accepted tweets go to ``tweets`` and, one JSON object a line, to
``<directory>/tweets.jsonl``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from .faults import FaultCounter, Faults
from .http_server import HttpServer, drip, json_error, reset_connection, stall

log = logging.getLogger(__name__)

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


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """An X API v2 problem response (``application/json``)."""
    body = {"title": _TITLES[status], "type": "about:blank", "status": status, "detail": detail}
    return json_error(status, body, headers)


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
        self._texts: set[str] = set()
        self._last_id = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2/tweets", self._create)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not _has_oauth_user_context(request.headers.get("Authorization", "")):
            return problem(401, "Unauthorized")
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
        if text in self._texts:
            return problem(403, "You are not allowed to create a Tweet with duplicate content.")

        tweet = self._record(text)
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
        )
        if self._counter.take("drip"):
            return await drip(request, posted, self.faults.drip_seconds)
        return posted

    def _record(self, text: str) -> dict[str, str]:
        tweet = {"id": self._next_id(), "text": text, "received_at": _now_iso()}
        self._texts.add(text)
        self.tweets.append(tweet)
        self._directory.mkdir(parents=True, exist_ok=True)
        with (self._directory / "tweets.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(tweet, ensure_ascii=False) + "\n")
        log.info("sandbox x: recorded tweet %s", tweet["id"])
        return tweet

    def _next_id(self) -> str:
        snowflake = (int(time.time() * 1000) - _X_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, snowflake)
        return str(self._last_id)


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
