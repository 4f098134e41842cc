"""The fax gateway stand-in speaking the subset of Telnyx Programmable Fax the dispatcher
uses.

- ``POST /v2/faxes`` (JSON, ``Authorization: Bearer`` with any key): ``connection_id``,
  ``to`` and ``from`` (E.164), ``media_url`` (where the PDF is fetched from, after the
  answer, as Telnyx does), optional ``webhook_url`` and ``client_state``. Answers 202
  with the fax object (``status`` ``queued``, a UUID ``id``).
- ``GET /v2/faxes/{id}``: ``{"data": fax}``; ``queued`` → ``media.processed`` once the PDF
  is fetched → ``sending`` → ``delivered`` or ``failed`` (with ``failure_reason``; a media
  link that does not answer 200 with a PDF ends in ``file_download_failed``).
- ``GET /v2/faxes``: newest first, ``filter[to][eq]``, ``filter[direction][eq]``,
  ``filter[created_at][gte]``, ``page[size]``, ``page[number]``: ``{"data", "meta"}``.
- A fax with ``webhook_url`` is reported there when final: ``fax.delivered`` or
  ``fax.failed``, signed with Ed25519 over ``"{telnyx-timestamp}|{body}"`` in
  ``telnyx-signature-ed25519`` (the key is ``signing_key``; its public half is
  ``webhook_public_key``, as Telnyx's portal shows it).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .fax_gateway import E164, FaxError, FaxGateway, SandboxFax, iso

_STATUS = {"inprogress": "sending", "success": "delivered", "failure": "failed"}


def telnyx_signature(key: Ed25519PrivateKey, timestamp: str, body: bytes) -> str:
    """The ``telnyx-signature-ed25519`` header: base64 Ed25519 over ``timestamp|body``."""
    return base64.b64encode(key.sign(timestamp.encode() + b"|" + body)).decode("ascii")


def telnyx_fax(fax: SandboxFax) -> dict[str, Any]:
    """The Telnyx fax object."""
    if fax.status == "queued":
        status = "media.processed" if fax.ready else "queued"
    else:
        status = _STATUS[fax.status]
    data: dict[str, Any] = {
        "record_type": "fax",
        "id": fax.ref,
        "connection_id": fax.extra.get("connection_id"),
        "direction": "outbound",
        "from": fax.sender,
        "to": fax.to,
        "media_url": fax.extra.get("media_url"),
        "webhook_url": fax.callback_url,
        "client_state": fax.extra.get("client_state"),
        "status": status,
        "created_at": iso(fax.created_at),
        "updated_at": iso(fax.completed_at or fax.created_at),
    }
    if fax.status == "failure":
        data["failure_reason"] = fax.error_type
    if fax.status == "success":
        data["page_count"] = 1
    return data


class TelnyxGateway(FaxGateway):
    """The Telnyx Programmable Fax dialect."""

    refused_error: ClassVar[FaxError] = ("receiver_unallocated_number", "", "Not allocated")
    busy_error: ClassVar[FaxError] = ("user_busy", "", "Busy")

    def __init__(
        self, directory: Path, *, signing_key: Ed25519PrivateKey | None = None, **options: Any
    ) -> None:
        super().__init__(directory, **options)
        self.signing_key = signing_key or Ed25519PrivateKey.generate()

    @property
    def webhook_public_key(self) -> str:
        """The public key the webhooks are signed with (base64 of its 32 bytes)."""
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/faxes", self._create)
        app.router.add_get("/v2/faxes", self._list)
        app.router.add_get("/v2/faxes/{id}", self._get)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"errors": [{"code": str(10000 + status), "title": message, "detail": message}]}
        return web.json_response(body, status=status, headers=headers)

    def no_id_answer(self) -> web.Response:
        return web.json_response({"data": {"record_type": "fax", "status": "queued"}}, status=202)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not _has_bearer(request):
            return self.error(401, "Authentication failed: send Authorization: Bearer <API key>")
        refused = self.refusal(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return self.error(422, "The body must be a JSON object")
        if not isinstance(body, dict):
            return self.error(422, "The body must be a JSON object")
        for name in ("connection_id", "to", "from", "media_url"):
            if not isinstance(body.get(name), str) or not body[name]:
                return self.error(422, f"'{name}' is required")
        for name in ("to", "from"):
            if not E164.match(body[name]):
                return self.error(422, f"'{name}' must be in E.164 format, not {body[name]!r}")
        if not body["media_url"].startswith(("http://", "https://")):
            return self.error(422, "'media_url' must be an http(s) URL")
        fax_id = self.next_id()
        fax = SandboxFax(
            id=fax_id,
            ref=str(uuid.uuid4()),
            to=body["to"],
            sender=body["from"],
            header_text=None,
            tags={},
            callback_url=body.get("webhook_url") or None,
            pdf=b"",
            extra={
                "connection_id": body["connection_id"],
                "media_url": body["media_url"],
                "client_state": body.get("client_state"),
            },
            ready=False,
        )
        self.accept(fax)
        accepted = web.json_response({"data": telnyx_fax(fax)}, status=202)
        return await self.answer(request, fax, accepted)

    async def prepare(self, fax: SandboxFax) -> FaxError | None:
        """Fetch the PDF from ``media_url`` as Telnyx does, after answering."""
        pdf = await self.fetch(str(fax.extra["media_url"]))
        if pdf is None or not pdf.startswith(b"%PDF-"):
            return ("file_download_failed", "", "The media URL did not answer with a PDF")
        fax.pdf = pdf
        return None

    async def _get(self, request: web.Request) -> web.Response:
        if not _has_bearer(request):
            return self.error(401, "Authentication failed")
        fax = self.find(request.match_info["id"])
        if fax is None:
            return self.error(404, "Resource not found")
        return web.json_response({"data": telnyx_fax(fax)})

    async def _list(self, request: web.Request) -> web.Response:
        if not _has_bearer(request):
            return self.error(401, "Authentication failed")
        query = request.query
        try:
            size = max(1, min(250, int(query.get("page[size]", "20"))))
            number = max(1, int(query.get("page[number]", "1")))
        except ValueError:
            return self.error(422, "page[size] and page[number] must be whole numbers")
        since = _moment(query.get("filter[created_at][gte]"))
        found = []
        for fax in reversed(self.faxes):
            self._advance(fax)
            if query.get("filter[to][eq]") not in (None, fax.to):
                continue
            if query.get("filter[direction][eq]") not in (None, "outbound"):
                continue
            if since is not None and fax.created_at < since:
                continue
            found.append(telnyx_fax(fax))
        start = (number - 1) * size
        meta = {
            "total_results": len(found),
            "total_pages": max(1, math.ceil(len(found) / size)),
            "page_number": number,
            "page_size": size,
        }
        return web.json_response({"data": found[start : start + size], "meta": meta})

    async def callback(self, fax: SandboxFax) -> None:
        if fax.callback_url is None:
            return
        data = telnyx_fax(fax)
        payload = {
            "fax_id": fax.ref,
            "connection_id": data["connection_id"],
            "direction": "outbound",
            "from": fax.sender,
            "to": fax.to,
            "original_media_url": data["media_url"],
            "status": data["status"],
            "client_state": data["client_state"],
        }
        if fax.status == "failure":
            payload["failure_reason"] = fax.error_type
        else:
            payload["page_count"] = 1
        event = {
            "data": {
                "event_type": f"fax.{data['status']}",
                "id": str(uuid.uuid4()),
                "occurred_at": iso(datetime.now(UTC)),
                "record_type": "event",
                "payload": payload,
            },
            "meta": {"attempt": 1, "delivered_to": fax.callback_url},
        }
        body = json.dumps(event).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "telnyx-timestamp": timestamp,
            "telnyx-signature-ed25519": telnyx_signature(self.signing_key, timestamp, body),
        }
        await self.post(fax, fax.callback_url, headers, content=body)


def _has_bearer(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme == "Bearer" and bool(token.strip())


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
