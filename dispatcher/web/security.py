"""Safety around the HTTP service: security headers, rate limits, body limits, operator auth."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.service import Service
from dispatcher.service.limits import over_limit
from dispatcher.web.errors import ApiError

OPERATOR_COOKIE = "dispatcher_operator"
CSRF_COOKIE = "dispatcher_csrf"
# Over https, the cookies' names carry this prefix: a browser then keeps them only if they
# are Secure, for Path=/ and with no Domain, so no other subdomain can set or replace them.
HOST_PREFIX = "__Host-"

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


class SecurityHeaders:
    """The security headers on every answer that does not set its own; the embeddable
    form may be framed (its Content-Security-Policy names by whom), /docs runs Swagger
    UI's inline script. Plain ASGI: no task or stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        added = [
            (name.lower().encode(), value.encode())
            for name, value in SECURITY_HEADERS.items()
            if not (name == "X-Frame-Options" and EMBED_PATH.match(path))
        ]
        docs = path in {"/docs", "/docs/oauth2-redirect"}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in added if name not in present]
                if docs:
                    csp = b"content-security-policy"
                    headers = [(n, v) for n, v in headers if n.lower() != csp]
                    headers.append((csp, DOCS_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, answer)


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


def derived_key(secret_key: str | None, purpose: bytes) -> bytes:
    """A key for one ``purpose``, derived from the configured secret key (every process
    derives the same), or a random one for this process only."""
    if secret_key:
        return hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()
    return secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class Cookies:
    """The names and attributes of the cookies that guard the operator's dashboard and
    every form: HttpOnly, SameSite=Strict, Path=/, and over https ``__Host-`` names and
    Secure. Plain http (the demo, on loopback) keeps plain names without Secure, which a
    browser would refuse there."""

    secure: bool
    operator: str
    csrf: str

    @classmethod
    def for_site(cls, public_url: str) -> Cookies:
        """As the site's public address (DISPATCHER_PUBLIC_URL) is reached: https or not."""
        secure = urlsplit(public_url).scheme.lower() == "https"
        prefix = HOST_PREFIX if secure else ""
        return cls(secure, prefix + OPERATOR_COOKIE, prefix + CSRF_COOKIE)

    def set(self, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )

    def delete(self, response: Response, name: str) -> None:
        # With the attributes it was set with: a browser ignores a __Host- cookie without them.
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="strict")


EMBED = "embed\0"  # what an embedded form's token is signed for, before the campaign id
EMBED_SECONDS = 6 * 3600  # a page left open longer asks for Send again
# The embedded form and the page after it: framed by the campaign's own sites.
EMBED_PATH = re.compile(r"^/c/[^/]+/embed(/sent)?$")


def frame_headers(origins: tuple[str, ...]) -> dict[str, str]:
    """The headers that let ``origins`` (and no one else) frame a page."""
    ancestors = " ".join(origins) or "'none'"
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", f"frame-ancestors {ancestors}"
    )
    # "same-origin", not "no-referrer": with no-referrer a browser sends "Origin: null"
    # on a form post, and the embedded form is taken only from our own origin. Nothing
    # leaves for other sites either way.
    return {"Content-Security-Policy": policy, "Referrer-Policy": "same-origin"}


class Csrf:
    """Double-submit CSRF tokens for HTML forms, bound to the operator's session: the
    token's MAC covers the session id in the request's cookie, so a token minted for
    another session (or none), even one planted in this browser's cookie by a page on the
    same site, is refused. Signed with a key derived from the configured secret key (or a
    random one for this process only)."""

    def __init__(self, secret_key: str | None = None) -> None:
        self._secret = derived_key(secret_key, b"csrf")

    def _mac(self, nonce: str, session: str) -> str:
        message = f"{nonce}\0{session}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def new_token(self, session: str = "") -> str:
        """A token for the forms of a page shown to ``session`` (the operator session id
        in the request's cookie; '' without one)."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._mac(nonce, session)}"

    def embed_token(self, campaign_id: str, now: float | None = None) -> str:
        """A form token for the campaign's form inside another site's iframe, where no
        cookie of ours is sent: signed for the campaign and the time it was issued."""
        issued = int(now if now is not None else time.time())
        nonce = f"{issued}-{secrets.token_urlsafe(8)}"
        return f"{nonce}.{self._mac(nonce, EMBED + campaign_id)}"

    def embed_valid(self, token: str, campaign_id: str, now: float | None = None) -> bool:
        """Our token for this campaign's embedded form, issued in the last EMBED_SECONDS."""
        nonce, _, mac = token.partition(".")
        issued = nonce.partition("-")[0]
        if not issued.isdigit():
            return False
        age = (now if now is not None else time.time()) - int(issued)
        fresh = 0 <= age <= EMBED_SECONDS
        return fresh and hmac.compare_digest(mac, self._mac(nonce, EMBED + campaign_id))

    def valid(self, cookie: str | None, form_value: str | None, session: str = "") -> bool:
        """The cookie and the form carry the same token, minted for ``session``."""
        if not cookie or not form_value or not hmac.compare_digest(cookie, form_value):
            return False
        nonce, _, mac = cookie.partition(".")
        return hmac.compare_digest(mac, self._mac(nonce, session))
