"""Safety around the HTTP service: security headers, rate limits, body limits, operator auth."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.service import Service
from dispatcher.service.limits import over_limit
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


class BodyLimit:
    """Every request body is limited as it is read, whatever its ``Content-Length`` says
    (or chunked, without one): past the limit, 413 and the rest is never read. Checked
    when the app reads, so a route's own earlier refusals (404 for an unknown campaign)
    still come first.

    ``limits`` maps a path prefix to its limit (the longest matching prefix wins);
    ``default`` applies elsewhere.
    """

    def __init__(self, app: ASGIApp, *, default: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        return next((n for prefix, n in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI passes its HTTPException through body parsing (anything else
                    # becomes a 400), and the app's handler answers 413 in the usual shape.
                    raise HTTPException(
                        413, f"request body is over {limit} bytes; at most {limit} are accepted"
                    )
            return message

        await self.app(scope, limited, send)


class RateLimiter:
    """Hits per key in fixed windows, counted in the database (every process shares them)."""

    def __init__(self, service: Service, scope: str, limit: int, window_seconds: int) -> None:
        self._service = service
        self.scope = scope
        self.limit = limit
        self.window = window_seconds

    async def check(self, key: str, what: str) -> None:
        """Count one hit for ``key``; raises a 429 ApiError with Retry-After when over."""
        retry_after = await over_limit(
            self._service, self.scope, key, limit=self.limit, window_seconds=self.window
        )
        if retry_after is not None:
            raise ApiError(
                429,
                f"too many appeals from this {what}; try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) a declared size over ``limit`` before reading any
    of it; a body that turns out longer is stopped by BodyLimit as it is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is {declared} bytes; at most {limit} are accepted")
    return await request.body()


class Csrf:
    """Double-submit CSRF tokens for HTML forms, signed with a key derived from the
    configured secret key (or a random one for this process only)."""

    def __init__(self, secret_key: str | None = None) -> None:
        if secret_key:
            self._secret = hmac.new(secret_key.encode(), b"csrf", hashlib.sha256).digest()
        else:
            self._secret = secrets.token_bytes(32)

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
