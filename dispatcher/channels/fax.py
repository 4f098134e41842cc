"""What every fax provider shares: its plugin declaration, the HTTP client, how HTTP
answers and failure messages are classified, and the signed links a gateway follows back.

Each provider is one module (``phaxio``, ``sinch``, ``telnyx``) with an adapter built on
:class:`FaxHttp` and a :class:`FaxProvider` declaration; ``registry`` lists them and
``DISPATCHER_FAX__PROVIDER`` chooses one.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import http
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from dispatcher.channels.base import (
    ChannelAdapter,
    DeliveryError,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
)
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.fax import render_fax_pdf
from dispatcher.render.fonts import FaxFontError
from dispatcher.settings import ConfigurationError, Settings

# What an adapter speaking to the built-in sandbox records as its provider: a rehearsal.
SANDBOX_PROVIDER = "sandbox"
# The sandbox checks that credentials are present, not what they are (not a secret).
SANDBOX_CREDENTIAL = "sandbox"
# How long a signed media link lets the gateway fetch a fax's PDF.
MEDIA_LINK_SECONDS = 3600

# Words in a gateway's failure message: the line was busy, or the number itself is wrong.
_TRANSIENT_WORDS = re.compile(r"\b(busy|no answer|ringing|rang out|try again)\b", re.I)
_PERMANENT_WORDS = re.compile(r"\b(invalid|not operational|not a fax|disconnected|blocked)\b", re.I)
_PERMANENT_TYPES = {"fatalErrorType", "documentConversionErrorType"}
# This process's key for fax links when DISPATCHER_SECRET_KEY is not set.
_PROCESS_LINK_KEY = secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class FaxProvider:
    """One fax provider as a plugin: what the registry needs besides its adapter's code."""

    name: str  # DISPATCHER_FAX__PROVIDER
    label: str  # what operators read
    # The DISPATCHER_FAX__* settings it needs (named when missing).
    settings: tuple[str, ...]
    # How a send whose outcome is unknown is settled (for the README and the log).
    reconciles: str
    # The API the sandbox gateway speaks for it.
    sandbox_dialect: str
    # Its adapter from the settings; True: one that speaks to the sandbox gateway.
    build: Callable[[Settings, bool], ChannelAdapter]


class FaxConfigError(ConfigurationError):
    """A fax provider's settings are incomplete; the message names the missing variable."""


async def drawn_fax(delivery: ClaimedDelivery, header_text: str) -> bytes:
    """The fax's PDF, drawn off the event loop. A worker with no font to draw it (its
    machine lacks the one the intake's had) fails the attempt as a fault that installing
    the font mends, naming what to install: the durable schedule tries again."""
    try:
        return await asyncio.to_thread(render_fax_pdf, delivery, header_text=header_text)
    except FaxFontError as exc:
        raise TransientError(f"this worker cannot draw the fax: {exc}", code="fax_font") from exc


def required(settings: Settings, name: str) -> str:
    """DISPATCHER_FAX__<NAME>'s value; ConfigError naming it when it is not given."""
    value = getattr(settings.fax, name)
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not text:
        raise FaxConfigError(
            f"DISPATCHER_FAX__{name.upper()} is required when DISPATCHER_FAX__PROVIDER is "
            f"{settings.fax.provider} and a {settings.fax.provider} account is configured"
        )
    return str(text)


def sandbox_url(settings: Settings) -> str:
    return f"http://{settings.sandbox.host}:{settings.sandbox.fax_port}"


def fax_link_key(settings: Settings) -> bytes:
    """The key that signs the links a fax gateway follows back to us (media, callbacks):
    derived from DISPATCHER_SECRET_KEY, so every process agrees; else this process's own."""
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        return _PROCESS_LINK_KEY
    return hmac.new(
        settings.secret_key.get_secret_value().encode(), b"fax-links", hashlib.sha256
    ).digest()


def link_mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class MediaLinks:
    """Signed, expiring links from which a gateway fetches a delivery's fax PDF."""

    key: bytes
    public_url: str

    def url(self, delivery_id: int, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + MEDIA_LINK_SECONDS)
        token = f"{delivery_id}.{expires}.{link_mac(self.key, f'media:{delivery_id}:{expires}')}"
        return f"{self.public_url.rstrip('/')}/webhooks/fax/media/{token}.pdf"

    def delivery_id(self, token: str, *, now: float | None = None) -> int | None:
        """The delivery a token is for, or None: not ours, tampered with, or expired."""
        parts = token.removesuffix(".pdf").split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        delivery_id, expires, mac = int(parts[0]), int(parts[1]), parts[2]
        expected = link_mac(self.key, f"media:{delivery_id}:{expires}")
        if not hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected.encode()):
            return None
        if expires < (time.time() if now is None else now):
            return None
        return delivery_id


def classify_fax_failure(
    error_type: str | None, error_code: str | None, error_message: str | None
) -> DeliveryError:
    """A transmission that ended in failure: busy/no answer → retry; bad number → permanent."""
    message = error_message or error_type or "fax transmission failed"
    text = f"fax failed: {message}" + (f" ({error_type})" if error_type else "")
    code = str(error_code) if error_code is not None else None
    if _TRANSIENT_WORDS.search(message):
        return TransientError(text, code=code)
    if _PERMANENT_WORDS.search(message) or error_type in _PERMANENT_TYPES:
        return PermanentError(text, code=code)
    return TransientError(text, code=code)


@dataclass(frozen=True, slots=True)
class GatewayReply:
    """What the gateway answered: status, headers and the JSON body (empty if not JSON)."""

    status: int
    headers: Mapping[str, str]
    body: dict[str, Any]

    @classmethod
    def of(cls, status: int, body: bytes = b"", **headers: str) -> GatewayReply:
        return cls(status, httpx.Headers(headers), _json(body))

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        try:
            return http.HTTPStatus(self.status).phrase
        except ValueError:
            return ""

    @property
    def message(self) -> str:
        """The gateway's own words for an error, in any of the providers' shapes."""
        body = self.body
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("title") or self.reason)
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or self.reason)
        return str(body.get("message") or self.reason)


def classify_http_status(reply: GatewayReply) -> DeliveryError:
    """429 and 5xx → retry; 401, 422 and other 4xx → permanent."""
    status = reply.status
    message = f"fax gateway answered HTTP {status}: {reply.message}"
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(reply), code=str(status))
    if status >= 500 or status == 408:
        return TransientError(message, code=str(status))
    return PermanentError(message, code=str(status))


def _retry_after(reply: GatewayReply) -> float:
    """Retry-After in seconds or as an HTTP date (RFC 9110); 60 s when absent or unreadable."""
    value = reply.headers.get("retry-after", "60").strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 60.0
    return (when - dt.datetime.now(dt.UTC)).total_seconds()


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return {}
    return body if isinstance(body, dict) else {}


def basic_auth(user: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {credentials}"}


# Failures before the request could go out: nothing reached the gateway.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class FaxHttp:
    """The HTTP side every fax adapter shares: one pooled httpx client per adapter (a
    worker's life), transport failures classified, and the common reading of a status
    answer."""

    channel = Channel.FAX
    finds_earlier = True

    def __init__(
        self, *, provider: str, base_url: str, headers: Mapping[str, str], timeout: float
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            # Made on first use and kept: its pooled connections serve every later request.
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self._timeout,
                follow_redirects=True,
            )
        return self._client

    async def _request(self, method: str, path: str, **kwargs: Any) -> GatewayReply:
        client = self._http()
        try:
            # The whole exchange within the timeout, as well as each read and write: a
            # gateway dripping its answer byte by byte does not hold a send forever.
            async with asyncio.timeout(self._timeout):
                response = await client.request(method, path, **kwargs)
        except _NOT_SENT as exc:
            said = str(exc) or type(exc).__name__
            raise TransientError(f"cannot reach fax gateway {self.base_url}: {said}") from exc
        except (TimeoutError, httpx.HTTPError) as exc:
            # The request may have arrived: each provider can be asked what it holds.
            raise TransientError(
                f"fax gateway connection failed: {exc!r}", outcome_unknown=True
            ) from exc
        return GatewayReply(response.status_code, response.headers, _json(response.content))

    async def _status(self, path: str, ref: str | None) -> GatewayReply | SendResult:
        """GET a fax's status: its answer, or a SendResult saying to ask again later.
        Raises TransientError when the gateway does not know the fax (send again) and the
        classified error for a refusal."""
        try:
            reply = await self._request("GET", path)
        except TransientError as exc:
            return SendResult(False, ref, f"status unavailable, will ask again: {exc.message}")
        if reply.status == 404:
            raise TransientError(f"fax gateway does not know fax {ref}; it will be sent again")
        if not reply.is_success:
            error = classify_http_status(reply)
            if isinstance(error, TransientError):
                return SendResult(
                    False, ref, f"status unavailable, will ask again: {error.message}"
                )
            raise error
        return reply

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def no_fax_id(body: dict[str, Any]) -> TransientError:
    """A 2xx answer without a fax id: the fax may be on its way, so the outcome is unknown
    and the next try asks the gateway instead of sending again."""
    return TransientError(
        f"fax gateway accepted the request but its answer has no fax id: {body!r:.200}",
        outcome_unknown=True,
    )


def verdict_or_wait(
    verdict: SendResult | DeliveryError | None, ref: str | None, status: object
) -> SendResult:
    """check()'s answer from a verdict: raised when failed, waiting while in progress."""
    if isinstance(verdict, DeliveryError):
        raise verdict
    return verdict or SendResult(False, ref, f"gateway status {status}")
