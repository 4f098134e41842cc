"""Phaxio API v2 (``DISPATCHER_FAX__PROVIDER=phaxio``, the default): the adapter, its
signed callbacks, and its declaration as a fax provider.

Send: ``POST /v2/faxes`` (multipart, the PDF as ``file``, the delivery's id as
``tag[delivery_id]``); status: ``GET /v2/faxes/{id}``; an unknown outcome is settled by
listing the faxes tagged with the delivery's id. Callbacks are signed with
``X-Phaxio-Signature`` and settle a delivery from their own content.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from dispatcher.channels.base import (
    UNGUARDED,
    ChannelAdapter,
    DeliveryError,
    LeaseGuard,
    SendResult,
    ensure_lease_held,
)
from dispatcher.channels.fax import (
    SANDBOX_CREDENTIAL,
    SANDBOX_PROVIDER,
    FaxHttp,
    FaxProvider,
    basic_auth,
    classify_fax_failure,
    classify_http_status,
    drawn_fax,
    no_fax_id,
    required,
    sandbox_url,
    verdict_or_wait,
)
from dispatcher.models import ClaimedDelivery
from dispatcher.settings import Settings


def phaxio_signature(
    token: str, url: str, fields: Mapping[str, str], files: Mapping[str, bytes]
) -> str:
    """Phaxio's callback signature (the ``X-Phaxio-Signature`` header value).

    Lowercase hex HMAC-SHA1 keyed with ``token`` over: ``url`` exactly as registered,
    then ``name + value`` of every POST field sorted by name, then ``name +
    sha1_hex(content)`` of every file part sorted by name.
    """
    signed = url
    signed += "".join(name + fields[name] for name in sorted(fields))
    # SHA-1 is fixed by Phaxio's scheme, not a choice made here.
    for name in sorted(files):
        signed += name + hashlib.sha1(files[name]).hexdigest()  # noqa: S324
    return hmac.new(token.encode(), signed.encode(), hashlib.sha1).hexdigest()


def verify_phaxio_signature(
    token: str,
    url: str,
    fields: Mapping[str, str],
    files: Mapping[str, bytes],
    signature: str,
) -> bool:
    """True if ``signature`` is what :func:`phaxio_signature` gives (constant time)."""
    expected = phaxio_signature(token, url, fields, files)
    return hmac.compare_digest(expected, signature.strip().lower())


def fax_verdict(fax: dict[str, Any], *, note: str = "") -> SendResult | DeliveryError | None:
    """What a Phaxio fax object says, whether polled or called back: transmitted, failed
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


class PhaxioAdapter(FaxHttp):
    """``send`` posts the PDF (the gateway accepts it); ``check`` polls until it is transmitted."""

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
        super().__init__(
            provider=provider,
            base_url=base_url,
            headers=basic_auth(api_key, api_secret),
            timeout=timeout,
        )
        self._header_text = header_text
        self._callback_url = callback_url

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        pdf = await drawn_fax(delivery, self._header_text)
        fields = {
            "to": delivery.address,
            "header_text": self._header_text,
            "tag[delivery_id]": str(delivery.id),
            "tag[appeal_id]": delivery.appeal_id,
        }
        if self._callback_url:
            fields["callback_url"] = self._callback_url
        # Multipart: the fields named as the gateway spells them (tag[delivery_id]), the PDF.
        upload = {"file": (f"appeal-{delivery.id}.pdf", pdf, "application/pdf")}
        ensure_lease_held(lease)  # rendering may have taken a while
        reply = await self._request("POST", "/v2/faxes", data=fields, files=upload)
        body = reply.body
        fax_id = (body.get("data") or {}).get("id")
        if not reply.is_success:
            raise classify_http_status(reply)
        if not body.get("success") or fax_id is None:
            raise no_fax_id(body)
        return SendResult(
            confirmed=False, provider_ref=str(fax_id), summary=str(body.get("message", ""))[:200]
        )

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        ref = delivery.provider_ref
        reply = await self._status(f"/v2/faxes/{ref}", ref)
        if isinstance(reply, SendResult):
            return reply
        data = reply.body.get("data") or {}
        return verdict_or_wait(fax_verdict(data), ref, data.get("status"))

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


def build(settings: Settings, sandboxed: bool) -> ChannelAdapter:
    fax = settings.fax
    if sandboxed:
        base_url, api_key, api_secret = (
            sandbox_url(settings),
            SANDBOX_CREDENTIAL,
            SANDBOX_CREDENTIAL,
        )
    else:
        base_url = required(settings, "base_url")
        api_key, api_secret = required(settings, "api_key"), required(settings, "api_secret")
    return PhaxioAdapter(
        provider=SANDBOX_PROVIDER if sandboxed else "phaxio",
        base_url=base_url,
        api_key=api_key,
        api_secret=api_secret,
        header_text=fax.header_text,
        callback_url=fax.callback_url,
        timeout=fax.timeout_seconds,
    )


PROVIDER = FaxProvider(
    name="phaxio",
    label="Phaxio API v2",
    settings=("base_url", "api_key", "api_secret", "callback_url", "callback_token"),
    reconciles="lists the faxes tagged with the delivery's id (tag[delivery_id])",
    sandbox_dialect="phaxio",
    build=build,
)
