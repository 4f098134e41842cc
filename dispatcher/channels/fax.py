"""Fax through a Phaxio-v2-compatible HTTP gateway, with aiohttp (one session per worker)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import http
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from dispatcher.channels.base import (
    DeliveryError,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
    ensure_lease_held,
)
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.fax import render_fax_pdf

# Words in a gateway's failure message: the line was busy, or the number itself is wrong.
_TRANSIENT_WORDS = re.compile(r"\b(busy|no answer|ringing|rang out|try again)\b", re.I)
_PERMANENT_WORDS = re.compile(r"\b(invalid|not operational|not a fax|disconnected|blocked)\b", re.I)
_PERMANENT_TYPES = {"fatalErrorType", "documentConversionErrorType"}


def classify_fax_failure(
    error_type: str | None, error_code: str | None, error_message: str | None
) -> DeliveryError:
    """A transmission that ended in ``failure``: busy/no answer → retry; bad number → permanent."""
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
        return cls(status, CIMultiDict(headers), _json(body))

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        try:
            return http.HTTPStatus(self.status).phrase
        except ValueError:
            return ""


def classify_http_status(reply: GatewayReply) -> DeliveryError:
    """429 and 5xx → retry; 401, 422 and other 4xx → permanent."""
    status = reply.status
    message = f"fax gateway answered HTTP {status}: {reply.body.get('message') or reply.reason}"
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


def fax_verdict(fax: dict[str, Any], *, note: str = "") -> SendResult | DeliveryError | None:
    """What a gateway's fax object says, whether polled or called back: transmitted, failed
    (classified), or None while it is still queued or in progress."""
    status = fax.get("status")
    if status == "success":
        pages = fax.get("num_pages", "?")
        return SendResult(True, str(fax.get("id")), f"transmitted ({pages} pages{note})")
    if status == "failure":
        return classify_fax_failure(
            fax.get("error_type"), fax.get("error_code"), fax.get("error_message")
        )
    return None


class FaxAdapter:
    """``send`` posts the PDF (the gateway accepts it); ``check`` polls until it is transmitted."""

    channel = Channel.FAX
    finds_earlier = True

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        header_text: str,
        callback_url: str | None = None,
        timeout: float = 60.0,
        provider: str = "phaxio",
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._header_text = header_text
        self._callback_url = callback_url
        credentials = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, delivery: ClaimedDelivery) -> SendResult:
        pdf = await asyncio.to_thread(render_fax_pdf, delivery, header_text=self._header_text)
        fields = {
            "to": delivery.address,
            "header_text": self._header_text,
            "tag[delivery_id]": str(delivery.id),
            "tag[appeal_id]": delivery.appeal_id,
        }
        if self._callback_url:
            fields["callback_url"] = self._callback_url
        # Field names as the gateway spells them (tag[delivery_id]), not percent-encoded.
        form = aiohttp.FormData(fields, quote_fields=False)
        form.add_field(
            "file", pdf, filename=f"appeal-{delivery.id}.pdf", content_type="application/pdf"
        )
        ensure_lease_held()  # rendering may have taken a while
        reply = await self._request("POST", "/v2/faxes", data=form)
        body = reply.body
        fax_id = (body.get("data") or {}).get("id")
        if not reply.is_success:
            raise classify_http_status(reply)
        if not body.get("success") or fax_id is None:
            # It answered "yes" but not in a way we can read: the fax may be on its way.
            # Marked unknown, so the next try looks it up by tag instead of sending again.
            raise TransientError(
                f"fax gateway accepted the request but its answer has no fax id: {body!r:.200}",
                outcome_unknown=True,
            )
        return SendResult(
            confirmed=False, provider_ref=str(fax_id), summary=str(body.get("message", ""))[:200]
        )

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        ref = delivery.provider_ref
        try:
            reply = await self._request("GET", f"/v2/faxes/{ref}")
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
        data = reply.body.get("data") or {}
        verdict = fax_verdict(data)
        if isinstance(verdict, DeliveryError):
            raise verdict
        return verdict or SendResult(False, ref, f"gateway status {data.get('status')}")

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        """Look the delivery's faxes up by ``tag[delivery_id]``: the newest one that did not
        fail settles it (transmitted, or still on its way); none, or only failed ones, means
        sending again."""
        reply = await self._request(
            "GET", "/v2/faxes", params={"tag[delivery_id]": str(delivery.id), "per_page": "20"}
        )
        if not reply.is_success:
            raise classify_http_status(reply)
        found = [f for f in reply.body.get("data") or [] if isinstance(f, dict)]
        for fax in sorted(found, key=lambda f: int(f.get("id") or 0), reverse=True):
            verdict = fax_verdict(fax, note=", found on the gateway")
            if isinstance(verdict, SendResult):
                return verdict
            if verdict is None:
                return SendResult(False, str(fax.get("id")), "found on the gateway, in progress")
        return None

    async def _request(self, method: str, path: str, **kwargs: Any) -> GatewayReply:
        if self._session is None or self._session.closed:
            # A session belongs to a running loop: made on first use, kept for the worker's life.
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        try:
            async with self._session.request(method, self.base_url + path, **kwargs) as response:
                raw = await response.read()
                return GatewayReply(response.status, response.headers, _json(raw))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TransientError(f"cannot reach fax gateway {self.base_url}: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The request may have arrived: a resend is recognisable by tag[delivery_id].
            raise TransientError(
                f"fax gateway connection failed: {exc!r}", outcome_unknown=True
            ) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
