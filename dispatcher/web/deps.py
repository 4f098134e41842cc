"""What every route may depend on: the context, the operator check, the campaign, the client.

Routes reach the application only through :class:`WebContext` (its ``service``) and the
annotated dependencies here; no route module imports another.
"""

from __future__ import annotations

import asyncio
import functools
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from dispatcher.campaigns import Campaign
from dispatcher.service import Service, audit
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.catalog import find_campaign
from dispatcher.service.intake import Accepted, submit_appeal
from dispatcher.service.limits import IntakeLimits, Limit
from dispatcher.service.log import LogFilter
from dispatcher.service.sessions import (
    SignInThrottled,
    session_holder,
    token_fingerprint,
    token_holder,
)
from dispatcher.settings import SHARED_OPERATOR, Settings
from dispatcher.supervisor import Supervisor
from dispatcher.web.errors import ApiError
from dispatcher.web.metrics import Metrics
from dispatcher.web.security import Cookies, Csrf, RateLimiter, derived_key

# What a 503 asks clients to wait before trying again.
UNAVAILABLE_RETRY_SECONDS = 60


@dataclass
class WebContext:
    """Built once at start-up by the app factory; ``request.app.state.context``."""

    settings: Settings
    service: Service
    metrics: Metrics
    per_ip: RateLimiter
    per_email: RateLimiter
    csrf: Csrf = field(default_factory=Csrf)
    # The in-process worker's supervisor and its task (None with --no-worker).
    supervisor: Supervisor | None = None
    worker_task: asyncio.Task[None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def operator_tokens(self) -> dict[str, str]:
        """Each operator's name and token: DISPATCHER_OPERATORS, and the shared
        DISPATCHER_OPERATOR_TOKEN as the unnamed operator."""
        tokens = {
            name: token.get_secret_value()
            for name, token in self.settings.operators.items()
            if token.get_secret_value()
        }
        shared = self.settings.operator_token
        if shared is not None and shared.get_secret_value():
            tokens[SHARED_OPERATOR] = shared.get_secret_value()
        return tokens

    def required_operator_tokens(self) -> dict[str, str]:
        """The configured operator tokens; 404 (operator features disabled) when none."""
        tokens = self.operator_tokens
        if not tokens:
            raise ApiError(
                404,
                "operator endpoints and dashboard are disabled: set DISPATCHER_OPERATOR_TOKEN "
                "or DISPATCHER_OPERATORS",
            )
        return tokens

    @functools.cached_property
    def cookies(self) -> Cookies:
        """Our cookies' names and attributes: ``__Host-`` and Secure when the site is
        reached over https (DISPATCHER_PUBLIC_URL)."""
        return Cookies.for_site(self.settings.public_url)

    @functools.cached_property
    def token_key(self) -> bytes:
        """Keys the fingerprint of the token a session was opened with."""
        secret = self.settings.secret_key
        return derived_key(secret.get_secret_value() if secret else None, b"operator-token")

    def token_fingerprint(self, operator: str) -> str:
        return token_fingerprint(self.token_key, self.operator_tokens[operator])

    def form_token(self, request: Request) -> str:
        """The CSRF token for a page's forms: the cookie's while it holds for the request's
        operator session (or for none), else a new one."""
        session = request.cookies.get(self.cookies.operator, "")
        token = request.cookies.get(self.cookies.csrf)
        if token and self.csrf.valid(token, token, session):
            return token
        return self.csrf.new_token(session)

    def form_token_holds(self, request: Request, posted: str) -> bool:
        """A posted form's CSRF token matches the cookie and was minted for the request's
        operator session: a token planted in the cookie by another page on the site was
        minted for another session, or none, and is refused."""
        session = request.cookies.get(self.cookies.operator, "")
        return self.csrf.valid(request.cookies.get(self.cookies.csrf), posted, session)

    async def operator(self, request: Request) -> str | None:
        """Who the request comes from: the operator whose token is in the bearer header,
        or who holds the dashboard session in its cookie; None for anyone else.

        A bearer token counts as a sign-in: a wrong one is audited, waits, and counts
        against the client address on the sign-in form's counter; a locked-out address
        gets 429, whatever token it sends. A session ends when its operator's token is
        changed or removed. What this request records in the audit log carries its
        client address."""
        tokens = self.required_operator_tokens()
        address = client_ip(request)
        audit.acting_from(address)
        bearer = _bearer_token(request)
        if bearer is None:
            cookie = request.cookies.get(self.cookies.operator)
            return await session_holder(self.service, cookie, tokens, self.token_key)
        try:
            return await token_holder(
                self.service,
                bearer,
                tokens,
                address=address,
                where=f"for {request.method} {request.url.path}",
                first_delay=self.settings.operator_sign_in_delay_seconds,
            )
        except SignInThrottled as exc:
            raise ApiError(
                429,
                f"too many wrong operator tokens from {address}; no token is accepted from "
                f"there for {exc.retry_after} s",
                field="authorization",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None

    async def signed_in(self, request: Request) -> str:
        """The operator a dashboard action comes from; 401 for anyone else."""
        operator = await self.operator(request)
        if operator is None:
            raise ApiError(401, "sign in to the operator dashboard first")
        return operator

    @property
    def intake_limits(self) -> IntakeLimits:
        """The limits intake counts appeals under: the ones reported actions count by."""
        return IntakeLimits(
            per_address=Limit(self.per_ip.limit, self.per_ip.window),
            per_email=Limit(self.per_email.limit, self.per_email.window),
        )

    async def submit_appeal(self, appeal: AppealRequest) -> Accepted | Rejected:
        """The pages' and the JSON API's intake: the service's, under this site's limits.

        503 when this process runs the worker and its supervisor gave up: nothing here
        would ever send what it accepted (with --no-worker, other processes send)."""
        if self.supervisor is not None and not self.supervisor.can_send:
            raise ApiError(
                503,
                "appeals cannot be sent at the moment, so none are being accepted; please "
                "try again later",
                headers={"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)},
            )
        return await submit_appeal(self.service, appeal, limits=self.intake_limits)


async def get_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


ContextDep = Annotated[WebContext, Depends(get_context)]
# Delivery ids are 32-bit in the store: a larger one is refused the same way on either
# database, instead of PostgreSQL failing on it.
DeliveryId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a delivery's id")]
MAX_DELIVERY_ID = 2**31 - 1


def _cursor(value: str | None) -> str | None:
    """A page cursor is a delivery id: digits, within the store's range."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_DELIVERY_ID:
        raise ValueError(
            f"{value!r} is not a cursor from a previous page (accepted: the "
            f"next_cursor of a page, a number from 1 to {MAX_DELIVERY_ID})"
        )
    return value


# The delivery log's page cursor: anything else is a 422 on either database.
Cursor = Annotated[
    str | None,
    Query(description="the `next_cursor` of the previous page"),
    AfterValidator(_cursor),
]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# Declared in /openapi.json, so /docs has an Authorize button for the operator token. The
# check itself is require_operator's (auto_error off): our error shape, and the cookie too.
operator_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="operatorToken",
    description="An operator's token (DISPATCHER_OPERATORS, or DISPATCHER_OPERATOR_TOKEN). "
    "The dashboard's sign-in cookie is accepted in its place for reading.",
)


async def require_operator(
    request: Request,
    context: ContextDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> str:
    """Operator endpoints: 404 when no token is configured (disabled), 401 without it.

    The dashboard's sign-in cookie is accepted for reading only: a request that changes
    something needs the bearer header, which another site's page cannot make a browser
    send (the dashboard's own forms carry a CSRF token and go to /operator/ instead).
    """
    operator = await context.operator(request)
    if operator is None:
        raise ApiError(
            401,
            "operator token missing or wrong",
            headers={"WWW-Authenticate": 'Bearer realm="dispatcher operator"'},
        )
    if request.method not in SAFE_METHODS and _bearer_token(request) is None:
        raise ApiError(
            403,
            f"{request.method} {request.url.path} needs the operator token in an "
            "'Authorization: Bearer …' header; the sign-in cookie alone is accepted only "
            "for reading",
        )
    return operator


OperatorDep = Depends(require_operator)
# The operator's name, for routes that record what they did.
OperatorName = Annotated[str, OperatorDep]


async def campaign_or_404(campaign_id: str, context: ContextDep) -> Campaign:
    """The campaign a path names (open or closed); 404 with the known ids otherwise."""
    return find_campaign(context.service.catalog, campaign_id)


CampaignDep = Annotated[Campaign, Depends(campaign_or_404)]


async def log_filter(
    campaign: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    target: str | None = None,
) -> LogFilter:
    """The delivery-log filter in a query string; 422 naming a bad status or channel."""
    return LogFilter.parse(campaign=campaign, status=status, channel=channel, target=target)


LogFilterDep = Annotated[LogFilter, Depends(log_filter)]


def client_ip(request: Request) -> str:
    """The client's address: the peer, or behind a proxy in DISPATCHER_TRUSTED_PROXIES the
    address it forwarded (uvicorn's proxy headers, see ``server_config``). Limits count
    it by ``service.limits.address_key`` (an IPv6 /64, all of loopback as one)."""
    return request.client.host if request.client else "unknown"


async def refuse_control_characters(request: Request) -> None:
    """Every route: a path parameter or query value with a control character (NUL above
    all, which PostgreSQL cannot store or compare) is a 422 naming it, on either database,
    before any route reads it. No id, filter or search term contains one."""
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        if not isinstance(value, str):
            continue
        bad = sorted({f"U+{ord(ch):04X}" for ch in value if unicodedata.category(ch) == "Cc"})
        if bad:
            raise ApiError(
                422,
                f"{name} {value!r} contains control characters ({', '.join(bad)}); "
                "accepted: text without them",
                name,
            )
