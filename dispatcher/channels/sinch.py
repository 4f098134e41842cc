"""Sinch Fax API v3 (``DISPATCHER_FAX__PROVIDER=sinch``): the adapter and its declaration.

Send: ``POST /v3/projects/{project}/faxes`` (multipart: ``to``, ``from``, ``file``,
``headerText``, ``callbackUrl`` with ``callbackUrlContentType=application/json``); status:
``GET /v3/projects/{project}/faxes/{id}`` (``QUEUED``, ``IN_PROGRESS``, ``COMPLETED``,
``FAILURE`` with ``errorType`` and ``errorCode``). Sinch does not sign its callbacks: the
``callbackUrl`` carries a token only we can make for that delivery, and a callback is only
a trigger to ask Sinch about the delivery's fax, so a forged or replayed one changes
nothing. That URL also identifies the delivery's faxes when an outcome is unknown: the
faxes to the number since then are listed and those carrying it are ours.

Sinch's test number ``+19898989898`` behaves like a real fax line without charge.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

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
    basic_auth,
    classify_fax_failure,
    classify_http_status,
    drawn_fax,
    fax_link_key,
    link_mac,
    no_fax_id,
    required,
    sandbox_url,
    verdict_or_wait,
)
from dispatcher.models import ClaimedDelivery
from dispatcher.settings import Settings

DEFAULT_BASE_URL = "https://fax.api.sinch.com"
# Sinch's number that emulates a real fax without charge: rehearse against Sinch with it.
TEST_NUMBER = "+19898989898"
# Where a callback for a delivery is received (the token follows).
CALLBACK_PATH = "/webhooks/fax/sinch/"
# Pages of faxes to a number read when looking for an unknown outcome's fax.
_PAGE_SIZE = 100
_MAX_PAGES = 10

# Sinch's call errors that say the number itself cannot take a fax (else: try again).
_PERMANENT_CALL_CODES = {32, 34, 49}
# Fax errors that retrying cannot help: cancelled, or the number is not permitted.
_PERMANENT_FAX_CODES = {75, 133}


def callback_token(key: bytes, delivery_id: int) -> str:
    """The token in a delivery's callback URL: its id and a MAC only we can make."""
    return f"{delivery_id}.{link_mac(key, f'sinch-callback:{delivery_id}')}"


def callback_delivery(key: bytes, token: str) -> int | None:
    """The delivery a callback token is for, or None when it is not one of ours."""
    head, _, mac = token.partition(".")
    if not head.isdigit() or not mac:
        return None
    expected = callback_token(key, int(head)).encode()
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected):
        return None
    return int(head)


def classify_sinch_failure(
    error_type: str | None, error_code: Any, error_message: str | None
) -> DeliveryError:
    """A fax that ended in ``FAILURE``: a busy or dropped line → retry; a number that cannot
    take faxes, a document Sinch could not convert, a fatal error → permanent."""
    code = (
        int(error_code) if isinstance(error_code, int | str) and str(error_code).isdigit() else None
    )
    message = f"fax failed: {error_message or error_type or 'no reason given'}"
    if error_type:
        message += f" ({error_type}" + (f" {code})" if code is not None else ")")
    shown = str(code) if code is not None else None
    if error_type in ("DOCUMENT_CONVERSION_ERROR", "FATAL_ERROR"):
        return PermanentError(message, code=shown)
    if error_type == "CALL_ERROR":
        cls = PermanentError if code in _PERMANENT_CALL_CODES else TransientError
        return cls(message, code=shown)
    if error_type == "FAX_ERROR":
        cls = PermanentError if code in _PERMANENT_FAX_CODES else TransientError
        return cls(message, code=shown)
    if error_type in ("LINE_ERROR", "GENERAL_ERROR"):
        return TransientError(message, code=shown)
    return classify_fax_failure(error_type, shown, error_message)


def sinch_verdict(fax: dict[str, Any], *, note: str = "") -> SendResult | DeliveryError | None:
    """What a Sinch fax object says: transmitted, failed (classified), or None while it is
    ``QUEUED`` or ``IN_PROGRESS``."""
    status = fax.get("status")
    if status == "COMPLETED":
        pages = fax.get("numberOfPages", fax.get("pagesSentSuccessfully", "?"))
        return SendResult(True, str(fax.get("id")), f"transmitted ({pages} pages{note})")
    if status == "FAILURE":
        return classify_sinch_failure(
            fax.get("errorType"), fax.get("errorCode"), fax.get("errorMessage")
        )
    return None


class SinchAdapter(FaxHttp):
    """``send`` uploads the PDF (Sinch accepts it); ``check`` asks until it is transmitted."""

    def __init__(
        self,
        *,
        base_url: str,
        project_id: str,
        key_id: str,
        key_secret: str,
        header_text: str,
        from_number: str | None,
        public_url: str,
        link_key: bytes,
        timeout: float = 60.0,
        lookback_seconds: float = 2 * 86400,
        provider: str = "sinch",
    ) -> None:
        super().__init__(
            provider=provider,
            base_url=base_url,
            headers=basic_auth(key_id, key_secret),
            timeout=timeout,
        )
        self._faxes = f"/v3/projects/{project_id}/faxes"
        self._header_text = header_text
        self._from = from_number
        self._public_url = public_url.rstrip("/")
        self._key = link_key
        self._lookback = dt.timedelta(seconds=lookback_seconds)

    def callback_url(self, delivery_id: int) -> str:
        return self._public_url + CALLBACK_PATH + callback_token(self._key, delivery_id)

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        pdf = await drawn_fax(delivery, self._header_text)
        fields = {"to": delivery.address}
        if self._from:
            fields["from"] = self._from
        # Sinch prints at most 50 characters of header on each page.
        fields["headerText"] = self._header_text[:50]
        fields["callbackUrl"] = self.callback_url(delivery.id)
        fields["callbackUrlContentType"] = "application/json"
        upload = {"file": (f"appeal-{delivery.id}.pdf", pdf, "application/pdf")}
        ensure_lease_held(lease)  # rendering may have taken a while
        reply = await self._request("POST", self._faxes, data=fields, files=upload)
        if not reply.is_success:
            raise classify_http_status(reply)
        fax_id = reply.body.get("id")
        if not fax_id:
            raise no_fax_id(reply.body)
        return SendResult(False, str(fax_id), f"accepted by Sinch ({reply.body.get('status')})")

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        ref = delivery.provider_ref
        reply = await self._status(f"{self._faxes}/{ref}", ref)
        if isinstance(reply, SendResult):
            return reply
        return verdict_or_wait(sinch_verdict(reply.body), ref, reply.body.get("status"))

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        """List the faxes to the delivery's number since its earlier try could have begun;
        those whose callback URL carries the delivery's token are its own. The newest that
        did not fail settles it; none, or only failed ones, means sending again."""
        since = dt.datetime.now(dt.UTC) - self._lookback
        # Compared by its end: the public URL may have changed since.
        ours = CALLBACK_PATH + callback_token(self._key, delivery.id)
        found: list[dict[str, Any]] = []
        page = 1
        while page <= _MAX_PAGES:
            params = {
                "to": delivery.address,
                "direction": "OUTBOUND",
                "createTime>": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "pageSize": str(_PAGE_SIZE),
                "page": str(page),
            }
            reply = await self._request("GET", self._faxes, params=params)
            if not reply.is_success:
                raise classify_http_status(reply)
            faxes = [f for f in reply.body.get("faxes") or [] if isinstance(f, dict)]
            found += [f for f in faxes if str(f.get("callbackUrl") or "").endswith(ours)]
            total_pages = reply.body.get("totalPages")
            if not faxes or not isinstance(total_pages, int) or page >= total_pages:
                break
            page += 1
        for fax in sorted(found, key=lambda f: str(f.get("createTime") or ""), reverse=True):
            verdict = sinch_verdict(fax, note=", found on Sinch")
            if isinstance(verdict, SendResult):
                return verdict
            if verdict is None:
                return SendResult(False, str(fax.get("id")), "found on Sinch, in progress")
        return None


def build(settings: Settings, sandboxed: bool) -> ChannelAdapter:
    fax = settings.fax
    if sandboxed:
        base_url, project_id = sandbox_url(settings), "sandbox-project"
        key_id = key_secret = SANDBOX_CREDENTIAL
    else:
        base_url = fax.base_url or DEFAULT_BASE_URL
        project_id = required(settings, "project_id")
        key_id, key_secret = required(settings, "key_id"), required(settings, "key_secret")
    return SinchAdapter(
        provider=SANDBOX_PROVIDER if sandboxed else "sinch",
        base_url=base_url,
        project_id=project_id,
        key_id=key_id,
        key_secret=key_secret,
        header_text=fax.header_text,
        from_number=fax.from_number,
        public_url=settings.public_url,
        link_key=fax_link_key(settings),
        timeout=fax.timeout_seconds,
        lookback_seconds=max(2 * settings.retry.max_seconds, 86400.0),
    )


PROVIDER = FaxProvider(
    name="sinch",
    label="Sinch Fax API v3",
    settings=("project_id", "key_id", "key_secret", "from_number", "base_url"),
    reconciles=(
        "lists the faxes to the number since the earlier try and takes those whose "
        "callback URL carries the delivery's token"
    ),
    sandbox_dialect="sinch",
    build=build,
)
