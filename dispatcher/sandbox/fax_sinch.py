"""The fax gateway stand-in speaking the subset of Sinch Fax API v3 the dispatcher uses.

- ``POST /v3/projects/{project}/faxes`` (multipart/form-data, HTTP Basic auth with any
  non-empty key): ``to`` (E.164), ``file`` (a PDF), optional ``from``, ``headerText``,
  ``callbackUrl`` and ``callbackUrlContentType``. Answers the fax object, ``status``
  ``QUEUED``, with an id in Sinch's style (26 characters).
- ``GET /v3/projects/{project}/faxes/{id}``: the fax object; ``IN_PROGRESS``, then
  ``COMPLETED`` or ``FAILURE`` (with ``errorType``, ``errorCode``, ``errorMessage``).
- ``GET /v3/projects/{project}/faxes``: newest first, filtered by ``to`` (starts with),
  ``direction``, ``status`` and ``createTime>`` (an ISO time), paged by ``pageSize`` and
  ``page``: ``{"faxes", "page", "pageSize", "totalItems", "totalPages"}``.
- A fax sent with ``callbackUrl`` is reported there when final: a JSON POST
  ``{"event": "FAX_COMPLETED", "eventTime", "fax"}``, unsigned, as Sinch sends it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from .fax_gateway import (
    E164,
    FaxError,
    FaxGateway,
    SandboxFax,
    has_basic_credentials,
    iso,
    read_multipart,
)

_STATUS = {"queued": "QUEUED", "inprogress": "IN_PROGRESS", "success": "COMPLETED"}
_STATUS["failure"] = "FAILURE"


def sinch_fax(fax: SandboxFax) -> dict[str, Any]:
    """The Sinch v3 fax object."""
    data: dict[str, Any] = {
        "id": fax.ref,
        "direction": "OUTBOUND",
        "from": fax.sender,
        "to": fax.to,
        "numberOfPages": 1,
        "status": _STATUS[fax.status],
        "createTime": iso(fax.created_at),
        "headerText": fax.header_text,
        "callbackUrl": fax.callback_url,
        "callbackUrlContentType": fax.extra.get("callbackUrlContentType"),
        "projectId": fax.extra.get("projectId"),
        "hasFile": "true",
    }
    if fax.completed_at is not None:
        data["completedTime"] = iso(fax.completed_at)
    if fax.status == "failure":
        data["errorType"] = fax.error_type
        data["errorCode"] = int(fax.error_code or 0)
        data["errorMessage"] = fax.error_message
    return {name: value for name, value in data.items() if value is not None}


class SinchGateway(FaxGateway):
    """The Sinch Fax API v3 dialect."""

    # Sinch's call error types and codes for a number that cannot take a fax and a busy line.
    refused_error: ClassVar[FaxError] = ("CALL_ERROR", "34", "Phone number not operational")
    busy_error: ClassVar[FaxError] = ("CALL_ERROR", "17", "Busy")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v3/projects/{project}/faxes", self._create)
        app.router.add_get("/v3/projects/{project}/faxes", self._list)
        app.router.add_get("/v3/projects/{project}/faxes/{id}", self._get)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"error": {"code": status, "message": message, "status": _status_word(status)}}
        return web.json_response(body, status=status, headers=headers)

    def no_id_answer(self) -> web.Response:
        return web.json_response({"status": "QUEUED"})

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not has_basic_credentials(request):
            return self.error(401, "Unauthorized: HTTP Basic with a key id and secret")
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.content_type != "multipart/form-data":
            return self.error(400, "Send multipart/form-data with the document as 'file'")
        try:
            fields, files = await read_multipart(request)
        except ValueError as exc:
            return self.error(400, f"Malformed multipart/form-data body: {exc}")
        to = fields.get("to", "").strip()
        if not E164.match(to):
            return self.error(400, f"'to' must be a phone number in E.164 format, not {to!r}")
        pdf = files.get("file")
        if pdf is None or not pdf.startswith(b"%PDF-"):
            return self.error(400, "'file' must be given as a PDF file part")
        content_type = fields.get("callbackUrlContentType") or "multipart/form-data"
        fax_id = self.next_id()
        fax = SandboxFax(
            id=fax_id,
            ref=f"01SANDBOX{fax_id:017d}",
            to=to,
            sender=fields.get("from") or None,
            header_text=fields.get("headerText") or None,
            tags={},
            callback_url=fields.get("callbackUrl") or None,
            pdf=pdf,
            extra={
                "callbackUrlContentType": content_type,
                "projectId": request.match_info["project"],
            },
        )
        self.accept(fax)
        return await self.answer(request, fax, web.json_response(sinch_fax(fax)))

    async def _get(self, request: web.Request) -> web.Response:
        if not has_basic_credentials(request):
            return self.error(401, "Unauthorized")
        fax = self.find(request.match_info["id"])
        if fax is None:
            return self.error(404, "Fax not found")
        return web.json_response(sinch_fax(fax))

    async def _list(self, request: web.Request) -> web.Response:
        if not has_basic_credentials(request):
            return self.error(401, "Unauthorized")
        query = request.query
        try:
            page_size = max(1, min(1000, int(query.get("pageSize", "100"))))
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            return self.error(400, "pageSize and page must be whole numbers")
        since = _moment(query.get("createTime>"))
        found = []
        for fax in reversed(self.faxes):
            self._advance(fax)
            object_ = sinch_fax(fax)
            if not fax.to.startswith(query.get("to", "")):
                continue
            if query.get("status") and object_["status"] != query["status"]:
                continue
            if query.get("direction", "OUTBOUND") != "OUTBOUND":
                continue
            if since is not None and fax.created_at < since:
                continue
            found.append(object_)
        start = (page - 1) * page_size
        return web.json_response(
            {
                "faxes": found[start : start + page_size],
                "page": page,
                "pageSize": page_size,
                "totalItems": len(found),
                "totalPages": max(1, math.ceil(len(found) / page_size)),
            }
        )

    async def callback(self, fax: SandboxFax) -> None:
        if fax.callback_url is None:
            return
        event = {
            "event": "FAX_COMPLETED",
            "eventTime": iso(datetime.now(UTC)),
            "fax": sinch_fax(fax),
        }
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        await self.post(fax, fax.callback_url, headers, content=body)


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip('"').replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status_word(status: int) -> str:
    return {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
    }.get(status, "UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION")
