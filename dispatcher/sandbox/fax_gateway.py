"""Fax gateway stand-in speaking the subset of Phaxio API v2 the dispatcher uses.

- ``POST /v2/faxes`` (multipart/form-data, HTTP Basic auth with any non-empty key and
  secret): fields ``to`` (E.164), ``file`` (a PDF file part), optional
  ``header_text``, ``callback_url`` and tags as ``tag[<name>]``. Answers
  ``{"success": true, "data": {"id": N}}`` with ids running from 1.
- ``GET /v2/faxes``: faxes newest first, filtered by ``tag[<name>]=<value>``, at most
  ``per_page`` (default 20).
- ``GET /v2/faxes/{id}``: the fax object; its status follows elapsed time:
  ``queued`` → ``inprogress`` after half of ``transmit_seconds`` → final after
  ``transmit_seconds``.
- On reaching the final state a fax sent with ``callback_url`` is reported there by a
  multipart POST (fields ``fax``, ``success``, ``is_test``, ``direction``), signed with
  ``X-Phaxio-Signature`` when a callback token is configured (see
  :func:`phaxio_signature`).

Successful faxes are written to ``<directory>/NNNNN-<to>.pdf`` and ``.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from aiohttp import BasicAuth, BodyPartReader, web

from dispatcher.channels.phaxio import phaxio_signature

from .faults import FaultCounter, Faults
from .http_server import HttpServer, drip, json_error, reset_connection, stall
from .recording import NumberedFolder

log = logging.getLogger(__name__)

FaxStatus = Literal["queued", "inprogress", "success", "failure"]

_E164 = re.compile(r"^\+\d{8,15}$")
_TAG_FIELD = re.compile(r"^tag\[(.+)\]$")
_CALLBACK_TIMEOUT_SECONDS = 5.0

# Failure details for the two simulated failures. The codes are sandbox choices in
# Phaxio's style (a numeric string), not copied from Phaxio's code table.
REFUSED_ERROR = ("fatalErrorType", "43", "Phone number not operational")
BUSY_ERROR = ("lineErrorType", "34", "Busy")


@dataclass
class SandboxFax:
    """One fax accepted by ``POST /v2/faxes``; ``status`` is updated as it transmits."""

    id: int
    to: str
    header_text: str | None
    tags: dict[str, str]
    callback_url: str | None
    pdf: bytes
    status: FaxStatus = "queued"
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed_at: datetime | None = None

    def api_data(self) -> dict[str, Any]:
        """The Phaxio v2 fax object (the ``data`` of GET and the callback's ``fax``)."""
        completed = _iso(self.completed_at)
        return {
            "id": self.id,
            "direction": "sent",
            "status": self.status,
            "is_test": True,
            "num_pages": 1,
            "created_at": _iso(self.created_at),
            "completed_at": completed,
            "caller_id": None,
            "tags": dict(self.tags),
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "recipients": [
                {
                    "phone_number": self.to,
                    "status": self.status,
                    "error_type": self.error_type,
                    "error_code": self.error_code,
                    "error_message": self.error_message,
                    "completed_at": completed,
                }
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


@dataclass
class _Transmission:
    """What the gateway knows about a fax that the fax record itself does not show."""

    started: float  # time.monotonic() at acceptance
    error: tuple[str, str, str] | None  # the planned failure, None for success


class FaxGateway(HttpServer):
    """The Phaxio stand-in. Use ``start()``/``stop()``; faxes land in ``faxes``."""

    def __init__(
        self,
        directory: Path,
        *,
        faults: Faults,
        faxes: list[SandboxFax],
        host: str = "127.0.0.1",
        port: int = 0,
        transmit_seconds: float = 0.5,
        callback_token: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.faults = faults
        self.faxes = faxes
        self._counter = FaultCounter(faults)
        self._folder = NumberedFolder(directory)
        self._transmit_seconds = transmit_seconds
        self._callback_token = callback_token
        self._by_id: dict[int, SandboxFax] = {}
        self._transmissions: dict[int, _Transmission] = {}
        # False before start() and after stop(): status then stays where it is.
        self._serving = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        # (fax id, HTTP status, JSON body) of each callback's answer, in order.
        self.callback_answers: list[tuple[int, int, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/faxes", self._create)
        app.router.add_get("/v2/faxes", self._list)
        app.router.add_get("/v2/faxes/{id}", self._get)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=_CALLBACK_TIMEOUT_SECONDS)
        try:
            await super().start()
        except BaseException:
            await self._client.aclose()
            self._client = None
            raise
        self._serving = True

    async def stop(self) -> None:
        """Stop serving and cancel pending transmissions and callbacks (faxes keep
        whatever status they had reached)."""
        # HTTP first: a POST still being handled could otherwise start a transmission
        # after the cancellation below.
        await super().stop()
        self._serving = False
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def advance_all(self) -> None:
        """Bring every fax to the status its elapsed time implies (while serving)."""
        for fax in self._by_id.values():
            self._advance(fax)

    # --- HTTP handlers -------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not _has_credentials(request):
            return _unauthorized()
        if self._counter.take("rate_limit"):
            wait = self.faults.rate_limit_reset_seconds
            return json_error(
                429,
                {"success": False, "message": "Rate limit exceeded"},
                None if wait is None else {"Retry-After": str(wait)},
            )
        if self._counter.take("fail"):
            return json_error(
                503,
                {
                    "success": False,
                    "message": "Service temporarily unavailable (sandbox: injected)",
                },
            )
        if self._counter.take("reset"):
            reset_connection(request.transport)  # the upload cut off halfway: nothing taken
            return web.Response(status=400)
        if request.content_type != "multipart/form-data":
            return _unprocessable("Request must be multipart/form-data with the PDF as 'file'")
        try:
            fields, files = await _read_multipart(request)
        except ValueError as exc:  # bad boundary, undecodable text field, ...
            return _unprocessable(f"Malformed multipart/form-data body: {exc}")

        to = fields.get("to", "").strip()
        if not _E164.match(to):
            shown = to or "(no 'to' field)"
            return _unprocessable(
                f"Invalid phone number: {shown} (expected E.164, e.g. +12025550123)"
            )
        pdf = files.get("file")
        if pdf is None:
            return _unprocessable("No file given: send the document as a file part named 'file'")
        if not pdf.startswith(b"%PDF-"):
            return _unprocessable("File 'file' is not a PDF (content must start with %PDF-)")

        fax = SandboxFax(
            id=len(self._by_id) + 1,
            to=to,
            header_text=fields.get("header_text") or None,
            tags={m.group(1): v for k, v in fields.items() if (m := _TAG_FIELD.match(k))},
            callback_url=fields.get("callback_url") or None,
            pdf=pdf,
        )
        self._accept(fax)
        return await self._answer(request, fax)

    async def _answer(self, request: web.Request, fax: SandboxFax) -> web.StreamResponse:
        """The answer to an accepted fax, or one of the faults that may take its place."""
        if fax.callback_url is not None and self._counter.take("early_callback"):
            self._finish(fax)
            await self._send_callback(fax, fax.callback_url)
        if self._counter.take("drop"):
            # Accepted, but the client never learns it: close the connection unanswered.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=200)
        if self._counter.take("garble"):
            return web.Response(status=200, text="<html>upstream answered</html>")
        if self._counter.take("no_id"):
            return web.json_response({"success": True, "message": "Fax queued", "data": {}})
        if self._counter.take("stall"):
            return await stall(request)
        queued = web.json_response(
            {"success": True, "message": "Fax queued for sending", "data": {"id": fax.id}}
        )
        if self._counter.take("drip"):
            return await drip(request, queued, self.faults.drip_seconds)
        return queued

    async def _list(self, request: web.Request) -> web.Response:
        """``GET /v2/faxes``, newest first, filtered by ``tag[<name>]=<value>`` parameters."""
        if not _has_credentials(request):
            return _unauthorized()
        wanted = {m.group(1): v for k, v in request.query.items() if (m := _TAG_FIELD.match(k))}
        try:
            per_page = max(1, min(1000, int(request.query.get("per_page", "20"))))
        except ValueError:
            return _unprocessable("per_page must be a whole number")
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
        if not _has_credentials(request):
            return _unauthorized()
        try:
            fax_id = int(request.match_info["id"])
        except ValueError:
            fax_id = 0
        fax = self._by_id.get(fax_id)
        if fax is None:
            return json_error(404, {"success": False, "message": "Fax not found"})
        self._advance(fax)
        return web.json_response(
            {"success": True, "message": "Retrieved fax successfully", "data": fax.api_data()}
        )

    # --- transmission --------------------------------------------------------

    def _accept(self, fax: SandboxFax) -> None:
        # The outcome is fixed at acceptance so that "first N busy" follows arrival order
        # even if polls finish faxes out of order. Refused numbers don't use a busy slot.
        if self.faults.refuses_fax(fax.to):
            error: tuple[str, str, str] | None = REFUSED_ERROR
        elif self._counter.take("busy"):
            error = BUSY_ERROR
        else:
            error = None
        self._by_id[fax.id] = fax
        self.faxes.append(fax)
        self._transmissions[fax.id] = _Transmission(started=time.monotonic(), error=error)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._transmit(fax), name=f"sandbox-fax-{fax.id}")
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Retrieve the exception (e.g. a disk error writing the PDF) so it is logged
        # once, here, instead of as "Task exception was never retrieved".
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("sandbox fax: transmission task %s failed", task.get_name(), exc_info=exc)

    async def _transmit(self, fax: SandboxFax) -> None:
        half = self._transmit_seconds / 2
        await asyncio.sleep(half)
        self._start_sending(fax)
        await asyncio.sleep(self._transmit_seconds - half)
        # Finish unconditionally: the timer may fire a hair before the elapsed-time
        # threshold that _advance() uses.
        self._finish(fax)
        if fax.callback_url is not None:
            await self._send_callback(fax, fax.callback_url)

    def _advance(self, fax: SandboxFax) -> None:
        if not self._serving:
            return
        elapsed = time.monotonic() - self._transmissions[fax.id].started
        if elapsed >= self._transmit_seconds:
            self._finish(fax)
        elif elapsed >= self._transmit_seconds / 2:
            self._start_sending(fax)

    @staticmethod
    def _start_sending(fax: SandboxFax) -> None:
        if fax.status == "queued":
            fax.status = "inprogress"

    def _finish(self, fax: SandboxFax) -> None:
        if fax.status in ("success", "failure"):
            return
        fax.completed_at = datetime.now(UTC)
        error = self._transmissions[fax.id].error
        if error is not None:
            fax.status = "failure"
            fax.error_type, fax.error_code, fax.error_message = error
            return
        fax.status = "success"
        stem = self._folder.next_stem(fax.to)
        self._folder.write_bytes(f"{stem}.pdf", fax.pdf)
        summary = {
            "id": fax.id,
            "to": fax.to,
            "header_text": fax.header_text,
            "tags": fax.tags,
            "status": fax.status,
            "created_at": _iso(fax.created_at),
            "completed_at": _iso(fax.completed_at),
        }
        text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        self._folder.write_bytes(f"{stem}.json", text.encode())
        log.info("sandbox fax: recorded %s.pdf", stem)

    async def _send_callback(self, fax: SandboxFax, url: str) -> None:
        fields = {
            "fax": json.dumps(fax.api_data()),
            "success": "true" if fax.status == "success" else "false",
            "is_test": "true",
            "direction": "sent",
        }
        body, content_type = _multipart_form(fields)
        headers = {"Content-Type": content_type}
        if self._callback_token is not None:
            headers["X-Phaxio-Signature"] = phaxio_signature(self._callback_token, url, fields, {})
        assert self._client is not None, "callbacks only run between start() and stop()"
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # The receiver being down must not take the gateway down with it.
            log.warning("sandbox fax: callback for fax %s to %s failed: %r", fax.id, url, exc)
            return
        with contextlib.suppress(ValueError):
            self.callback_answers.append((fax.id, response.status_code, response.json()))
        if response.is_error:
            log.warning(
                "sandbox fax: callback for fax %s to %s answered HTTP %s",
                fax.id,
                url,
                response.status_code,
            )


def _has_credentials(request: web.Request) -> bool:
    header = request.headers.get("Authorization")
    if header is None:
        return False
    try:
        auth = BasicAuth.decode(header)
    except ValueError:
        return False
    return bool(auth.login) and bool(auth.password)


def _unauthorized() -> web.Response:
    return json_error(
        401,
        {"success": False, "message": "Invalid API credentials"},
        {"WWW-Authenticate": 'Basic realm="phaxio-sandbox"'},
    )


def _unprocessable(message: str) -> web.Response:
    return json_error(422, {"success": False, "message": message})


async def _read_multipart(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Plain fields and file parts of a multipart body, read into memory.

    Used instead of ``request.post()``, which spools files to temporary files through
    the default thread-pool executor; the sandbox keeps everything in the loop.
    """
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue  # nested multipart or nameless parts carry nothing Phaxio reads
        if part.filename is not None:
            files.setdefault(part.name, bytes(await part.read()))
        else:
            fields.setdefault(part.name, await part.text())
    return fields, files


def _multipart_form(fields: Mapping[str, str]) -> tuple[bytes, str]:
    """Encode ``fields`` as multipart/form-data; returns (body, Content-Type).

    Hand-rolled because httpx only produces multipart when there are file parts, and
    Phaxio's callbacks are multipart without any.
    """
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode()
        )
        chunks.append(value.encode())
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
