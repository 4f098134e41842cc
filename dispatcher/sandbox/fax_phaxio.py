"""The fax gateway stand-in speaking the subset of Phaxio API v2 the dispatcher uses.

- ``POST /v2/faxes`` (multipart/form-data, HTTP Basic auth with any non-empty
  credentials): ``to`` (E.164), ``file`` (a PDF), optional ``header_text``,
  ``tag[<name>]`` and ``callback_url``; answers the new fax's id.
- ``GET /v2/faxes/{id}``: the fax; ``GET /v2/faxes``: newest first, filtered by
  ``tag[<name>]=<value>``.
- A fax sent with ``callback_url`` is reported there when final, as Phaxio does: a
  multipart POST, signed in ``X-Phaxio-Signature`` when the gateway has a callback token.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from dispatcher.channels.phaxio import phaxio_signature

from .fax_gateway import E164, FaxGateway, SandboxFax, has_basic_credentials, read_multipart
from .http_server import json_error

_TAG_FIELD = re.compile(r"^tag\[(.+)\]$")


class PhaxioGateway(FaxGateway):
    """The Phaxio API v2 dialect."""

    def __init__(
        self, directory: Path, *, callback_token: str | None = None, **options: Any
    ) -> None:
        super().__init__(directory, **options)
        self._callback_token = callback_token

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/faxes", self._create)
        app.router.add_get("/v2/faxes", self._list)
        app.router.add_get("/v2/faxes/{id}", self._get)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return json_error(status, {"success": False, "message": message}, headers)

    def no_id_answer(self) -> web.Response:
        return web.json_response({"success": True, "message": "Fax queued", "data": {}})

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not has_basic_credentials(request):
            return self._unauthorized()
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.content_type != "multipart/form-data":
            return self.error(422, "Request must be multipart/form-data with the PDF as 'file'")
        try:
            fields, files = await read_multipart(request)
        except ValueError as exc:  # bad boundary, undecodable text field, ...
            return self.error(422, f"Malformed multipart/form-data body: {exc}")

        to = fields.get("to", "").strip()
        if not E164.match(to):
            shown = to or "(no 'to' field)"
            return self.error(
                422, f"Invalid phone number: {shown} (expected E.164, e.g. +12025550123)"
            )
        pdf = files.get("file")
        if pdf is None:
            return self.error(422, "No file given: send the document as a file part named 'file'")
        if not pdf.startswith(b"%PDF-"):
            return self.error(422, "File 'file' is not a PDF (content must start with %PDF-)")

        fax = SandboxFax(
            id=self.next_id(),
            to=to,
            header_text=fields.get("header_text") or None,
            tags={m.group(1): v for k, v in fields.items() if (m := _TAG_FIELD.match(k))},
            callback_url=fields.get("callback_url") or None,
            pdf=pdf,
        )
        self.accept(fax)
        queued = web.json_response(
            {"success": True, "message": "Fax queued for sending", "data": {"id": fax.id}}
        )
        return await self.answer(request, fax, queued)

    async def _list(self, request: web.Request) -> web.Response:
        """``GET /v2/faxes``, newest first, filtered by ``tag[<name>]=<value>`` parameters."""
        if not has_basic_credentials(request):
            return self._unauthorized()
        wanted = {m.group(1): v for k, v in request.query.items() if (m := _TAG_FIELD.match(k))}
        try:
            per_page = max(1, min(1000, int(request.query.get("per_page", "20"))))
        except ValueError:
            return self.error(422, "per_page must be a whole number")
        found = [
            fax
            for fax in reversed(self.faxes)
            if all(fax.tags.get(name) == value for name, value in wanted.items())
        ]
        for fax in found[:per_page]:
            self._advance(fax)
        return web.json_response(
            {
                "success": True,
                "message": "Retrieved faxes successfully",
                "data": [fax.api_data() for fax in found[:per_page]],
                "paging": {"total": len(found), "per_page": per_page, "page": 1},
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        if not has_basic_credentials(request):
            return self._unauthorized()
        fax = self.find(request.match_info["id"])
        if fax is None:
            return self.error(404, "Fax not found")
        return web.json_response(
            {"success": True, "message": "Retrieved fax successfully", "data": fax.api_data()}
        )

    def _unauthorized(self) -> web.Response:
        return self.error(
            401, "Invalid API credentials", {"WWW-Authenticate": 'Basic realm="phaxio-sandbox"'}
        )

    async def callback(self, fax: SandboxFax) -> None:
        if fax.callback_url is None:
            return
        fields = {
            "fax": json.dumps(fax.api_data()),
            "success": "true" if fax.status == "success" else "false",
            "is_test": "true",
            "direction": "sent",
        }
        headers = {}
        if self._callback_token is not None:
            headers["X-Phaxio-Signature"] = phaxio_signature(
                self._callback_token, fax.callback_url, fields, {}
            )
        # Multipart with text parts only (no file name): httpx sends a part without a file
        # name as a plain form field.
        parts = {
            name: (None, value.encode(), "text/plain; charset=utf-8")
            for name, value in fields.items()
        }
        await self.post(fax, fax.callback_url, headers, files=parts)
