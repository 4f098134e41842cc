"""Safety around the HTTP service: security headers, rate limits, body limits, operator auth."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from dispatcher.web.errors import ApiError

OPERATOR_COOKIE = "dispatcher_operator"
CSRF_COOKIE = "dispatcher_csrf"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Swagger UI (served from our own /static) needs an inline bootstrap script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path in {"/docs", "/docs/oauth2-redirect"}:
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response


class RateLimiter:
    """Sliding-window counts per key, in this process (a second process has its own)."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, what: str) -> None:
        """Count one hit for ``key``; raises a 429 ApiError with Retry-After when over."""
        if self.limit <= 0:
            return
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            retry_after = max(1, math.ceil(hits[0] + self.window - now))
            raise ApiError(
                429,
                f"too many appeals from this {what}; try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        hits.append(now)


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is {declared} bytes; at most {limit} are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, f"request body is over {limit} bytes; at most {limit} are accepted")
    return bytes(body)


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class Csrf:
    """Double-submit CSRF tokens for HTML forms, bound to a per-process secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def new_token(self) -> str:
        nonce = secrets.token_urlsafe(16)
        mac = hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{nonce}.{mac}"

    def valid(self, cookie: str | None, form_value: str | None) -> bool:
        if not cookie or not form_value or not hmac.compare_digest(cookie, form_value):
            return False
        nonce, _, mac = cookie.partition(".")
        expected = hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(mac, expected)
