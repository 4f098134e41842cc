"""Telnyx Programmable Fax (``DISPATCHER_FAX__PROVIDER=telnyx``): the adapter, its
webhook signature, and its declaration.

Send: ``POST /v2/faxes`` (JSON: ``connection_id``, ``to``, ``from``, ``media_url``,
``webhook_url``, ``client_state``). Telnyx fetches the PDF itself from ``media_url``: a
link under ``DISPATCHER_PUBLIC_URL`` signed for that delivery that expires within the
hour (see :class:`~dispatcher.channels.fax.MediaLinks`). Status: ``GET /v2/faxes/{id}``.
Webhooks (``fax.delivered``, ``fax.failed``) are signed with Ed25519 over
``"{telnyx-timestamp}|{raw body}"`` and settle a delivery from their own content once the
signature and the timestamp check out. ``client_state`` carries the delivery's id, which
identifies its faxes when an outcome is unknown.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dispatcher.channels.base import (
    UNGUARDED,
    ChannelAdapter,
    DeliveryError,
    LeaseGuard,
    PermanentError,
    SendResult,
    TransientError,
    ensure_lease_held,
)
from dispatcher.channels.fax import (
    SANDBOX_CREDENTIAL,
    SANDBOX_PROVIDER,
    FaxHttp,
    FaxProvider,
    MediaLinks,
    classify_http_status,
    fax_link_key,
    no_fax_id,
    required,
    sandbox_url,
    verdict_or_wait,
)
from dispatcher.models import ClaimedDelivery
from dispatcher.settings import Settings

DEFAULT_BASE_URL = "https://api.telnyx.com"
WEBHOOK_PATH = "/webhooks/fax"
# A webhook whose timestamp is further than this from our clock is refused (a replay).
SIGNATURE_TOLERANCE_SECONDS = 300
# The sandbox's sending number when none is configured (Telnyx requires one).
SANDBOX_FROM = "+15550000100"
_PAGE_SIZE = 50
_MAX_PAGES = 10

# Failure reasons that retrying cannot help: the number, the document, the account.
PERMANENT_REASONS = frozenset(
    {
        "account_disabled",
        "destination_invalid",
        "destination_not_in_countries_whitelist",
        "destination_not_in_service_plan",
        "file_format_invalid",
        "file_size_limit_exceeded",
        "page_count_limit_exceeded",
        "receiver_decline",
        "receiver_incompatible_destination",
        "receiver_invalid_number_format",
        "receiver_unallocated_number",
    }
)


def verify_telnyx_signature(
    public_key: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """True if ``signature`` (base64, header ``telnyx-signature-ed25519``) is the Ed25519
    signature of ``"{timestamp}|{body}"`` under ``public_key`` (base64, 32 bytes) and
    ``timestamp`` (Unix seconds, header ``telnyx-timestamp``) is within ``tolerance``."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + b"|" + body)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def client_state(delivery_id: int) -> str:
    """What a fax carries back in ``client_state`` (base64, as Telnyx requires)."""
    return base64.b64encode(f"delivery:{delivery_id}".encode()).decode("ascii")


# Telnyx's reasons in the words the status page and the log look for.
_WORDS = {
    "user_busy": "the line was busy",
    "receiver_user_busy": "the line was busy",
    "receiver_no_response": "no answer",
    "fax_initial_communication_timeout": "no answer from a fax machine",
    "receiver_unallocated_number": "number not in service",
    "destination_invalid": "invalid number",
    "receiver_invalid_number_format": "invalid number",
    "file_download_failed": "Telnyx could not fetch the PDF from our media link",
}


def classify_telnyx_failure(reason: str | None) -> DeliveryError:
    """A fax that ended ``failed``: a busy, silent or dropped line, a media link that could
    not be fetched, Telnyx busy → retry; a bad number, document or account → permanent."""
    shown = reason or "no reason given"
    if reason in _WORDS:
        shown = f"{_WORDS[reason]} ({reason})"
    cls = PermanentError if reason in PERMANENT_REASONS else TransientError
    return cls(f"fax failed: {shown}", code=reason)


def telnyx_verdict(fax: dict[str, Any], *, note: str = "") -> SendResult | DeliveryError | None:
    """What a Telnyx fax object (or a webhook's payload) says: transmitted, failed, or None
    while it is queued, being processed or sending."""
    status = fax.get("status")
    fax_id = fax.get("id") or fax.get("fax_id")
    if status == "delivered":
        pages = fax.get("page_count", "?")
        return SendResult(True, str(fax_id), f"transmitted ({pages} pages{note})")
    if status == "failed":
        return classify_telnyx_failure(fax.get("failure_reason"))
    return None


class TelnyxAdapter(FaxHttp):
    """``send`` hands Telnyx a signed link to the PDF; ``check`` asks until it is sent."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connection_id: str,
        from_number: str,
        media: MediaLinks,
        webhook_url: str | None,
        timeout: float = 60.0,
        lookback_seconds: float = 2 * 86400,
        provider: str = "telnyx",
    ) -> None:
        super().__init__(
            provider=provider,
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
        self._connection_id = connection_id
        self._from = from_number
        self._media = media
        self._webhook_url = webhook_url
        self._lookback = dt.timedelta(seconds=lookback_seconds)

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        request = {
            "connection_id": self._connection_id,
            "to": delivery.address,
            "from": self._from,
            "media_url": self._media.url(delivery.id),
            "client_state": client_state(delivery.id),
        }
        if self._webhook_url:
            request["webhook_url"] = self._webhook_url
        ensure_lease_held(lease)
        reply = await self._request("POST", "/v2/faxes", json=request)
        if not reply.is_success:
            raise classify_http_status(reply)
        data = reply.body.get("data") or {}
        fax_id = data.get("id") if isinstance(data, dict) else None
        if not fax_id:
            raise no_fax_id(reply.body)
        return SendResult(False, str(fax_id), f"accepted by Telnyx ({data.get('status')})")

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        ref = delivery.provider_ref
        reply = await self._status(f"/v2/faxes/{ref}", ref)
        if isinstance(reply, SendResult):
            return reply
        data = reply.body.get("data") or {}
        return verdict_or_wait(telnyx_verdict(data), ref, data.get("status"))

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        """List the outbound faxes to the delivery's number since its earlier try could have
        begun; those whose ``client_state`` names the delivery are its own. The newest that
        did not fail settles it; none, or only failed ones, means sending again."""
        since = dt.datetime.now(dt.UTC) - self._lookback
        ours = client_state(delivery.id)
        found: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            params = {
                "filter[to][eq]": delivery.address,
                "filter[direction][eq]": "outbound",
                "filter[created_at][gte]": since.isoformat(timespec="seconds"),
                "page[size]": str(_PAGE_SIZE),
                "page[number]": str(page),
            }
            reply = await self._request("GET", "/v2/faxes", params=params)
            if not reply.is_success:
                raise classify_http_status(reply)
            faxes = [f for f in reply.body.get("data") or [] if isinstance(f, dict)]
            found += [f for f in faxes if f.get("client_state") == ours]
            meta = reply.body.get("meta") or {}
            total_pages = meta.get("total_pages") if isinstance(meta, dict) else None
            if not faxes or not isinstance(total_pages, int) or page >= total_pages:
                break
        for fax in sorted(found, key=lambda f: str(f.get("created_at") or ""), reverse=True):
            verdict = telnyx_verdict(fax, note=", found on Telnyx")
            if isinstance(verdict, SendResult):
                return verdict
            if verdict is None:
                return SendResult(False, str(fax.get("id")), "found on Telnyx, in progress")
        return None


def build(settings: Settings, sandboxed: bool) -> ChannelAdapter:
    fax = settings.fax
    if sandboxed:
        base_url, api_key, connection_id = sandbox_url(settings), SANDBOX_CREDENTIAL, "sandbox"
        from_number = fax.from_number or SANDBOX_FROM
    else:
        base_url = fax.base_url or DEFAULT_BASE_URL
        api_key, connection_id = required(settings, "api_key"), required(settings, "connection_id")
        from_number = required(settings, "from_number")
    public_url = settings.public_url.rstrip("/")
    return TelnyxAdapter(
        provider=SANDBOX_PROVIDER if sandboxed else "telnyx",
        base_url=base_url,
        api_key=api_key,
        connection_id=connection_id,
        from_number=from_number,
        media=MediaLinks(fax_link_key(settings), public_url),
        # Without the key to check them, webhooks would be refused: polling settles instead.
        webhook_url=public_url + WEBHOOK_PATH if fax.webhook_public_key else None,
        timeout=fax.timeout_seconds,
        lookback_seconds=max(2 * settings.retry.max_seconds, 86400.0),
    )


PROVIDER = FaxProvider(
    name="telnyx",
    label="Telnyx Programmable Fax",
    settings=("api_key", "connection_id", "from_number", "webhook_public_key", "base_url"),
    reconciles=(
        "lists the outbound faxes to the number since the earlier try and takes those whose "
        "client_state names the delivery"
    ),
    sandbox_dialect="telnyx",
    build=build,
)
