"""The fax gateway stand-in: what every dialect shares.

:class:`FaxGateway` keeps the faxes, fixes each one's outcome at acceptance (a refused
number, the first N busy), moves it ``queued`` → ``inprogress`` after half of
``transmit_seconds`` → final after ``transmit_seconds``, records successful faxes as
``<directory>/NNNNN-<to>.pdf`` and ``.json``, calls back when the dialect does, and
injects the HTTP faults of :class:`Faults`. A dialect subclass speaks one provider's API
over it: ``PhaxioGateway`` (fax_phaxio.py), ``SinchGateway`` (fax_sinch.py) and
``TelnyxGateway`` (fax_telnyx.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
from aiohttp import BasicAuth, BodyPartReader, web

from dispatcher.logs import get_logger

from .faults import FaultCounter, Faults
from .http_server import HttpServer, drip, reset_connection, stall
from .recording import NumberedFolder

log = get_logger(__name__)

FaxStatus = Literal["queued", "inprogress", "success", "failure"]
# A planned failure: the dialect's error type, code and message.
FaxError = tuple[str, str, str]

E164 = re.compile(r"^\+\d{8,15}$")
_CALLBACK_TIMEOUT_SECONDS = 5.0

# Failure details for the two simulated failures. The codes are sandbox choices in
# Phaxio's style (a numeric string), not copied from Phaxio's code table.
REFUSED_ERROR = ("fatalErrorType", "43", "Phone number not operational")
BUSY_ERROR = ("lineErrorType", "34", "Busy")


@dataclass
class SandboxFax:
    """One accepted fax; ``status`` is updated as it transmits. ``ref`` is the id the
    dialect shows (Phaxio's number, Sinch's or Telnyx's string)."""

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
    ref: str = ""
    sender: str | None = None
    # What else the dialect keeps of the request (Telnyx's media_url, client_state, …).
    extra: dict[str, Any] = field(default_factory=dict)
    # False until the dialect has what it needs to transmit (Telnyx: the fetched PDF).
    ready: bool = True

    def __post_init__(self) -> None:
        self.ref = self.ref or str(self.id)

    def api_data(self) -> dict[str, Any]:
        """The Phaxio v2 fax object (the ``data`` of GET and the callback's ``fax``)."""
        completed = iso(self.completed_at)
        return {
            "id": self.id,
            "direction": "sent",
            "status": self.status,
            "is_test": True,
            "num_pages": 1,
            "created_at": iso(self.created_at),
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


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


@dataclass
class _Transmission:
    """What the gateway knows about a fax that the fax record itself does not show."""

    started: float  # time.monotonic() once ready to transmit
    error: FaxError | None  # the planned failure, None for success


class FaxGateway(HttpServer):
    """What every dialect shares. Use ``start()``/``stop()``; faxes land in ``faxes``."""

    # The dialect's two simulated failures (error type, code, message).
    refused_error: ClassVar[FaxError] = REFUSED_ERROR
    busy_error: ClassVar[FaxError] = BUSY_ERROR

    def __init__(
        self,
        directory: Path,
        *,
        faults: Faults,
        faxes: list[SandboxFax],
        host: str = "127.0.0.1",
        port: int = 0,
        transmit_seconds: float = 0.5,
    ) -> None:
        super().__init__(host=host, port=port)
        self.faults = faults
        self.faxes = faxes
        self._counter = FaultCounter(faults)
        self._folder = NumberedFolder(directory)
        self._transmit_seconds = transmit_seconds
        self._by_ref: dict[str, SandboxFax] = {}
        self._transmissions: dict[int, _Transmission] = {}
        # False before start() and after stop(): status then stays where it is.
        self._serving = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        # (fax id, HTTP status, JSON body) of each callback's answer, in order.
        self.callback_answers: list[tuple[int, int, Any]] = []

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
        for fax in self._by_ref.values():
            self._advance(fax)

    def find(self, ref: str) -> SandboxFax | None:
        """The fax the dialect calls ``ref``, brought up to date."""
        fax = self._by_ref.get(ref)
        if fax is not None:
            self._advance(fax)
        return fax

    def next_id(self) -> int:
        return len(self._by_ref) + 1

    # --- what a dialect provides ---------------------------------------------

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """An error answer in the dialect's shape."""
        raise NotImplementedError

    def no_id_answer(self) -> web.Response:
        """A 2xx answer that says the fax was taken without saying its id."""
        raise NotImplementedError

    async def prepare(self, fax: SandboxFax) -> FaxError | None:
        """Get what the fax needs before it transmits; a failure it must end in, or None."""
        return None

    async def callback(self, fax: SandboxFax) -> None:
        """Tell the client the fax reached its final status, if the dialect does."""

    # --- faults around the answers -------------------------------------------

    def refusal(self, request: web.Request) -> web.StreamResponse | None:
        """A fault that takes the place of handling a new fax (429, 503, a reset), or None."""
        if self._counter.take("rate_limit"):
            wait = self.faults.rate_limit_reset_seconds
            return self.error(
                429, "Rate limit exceeded", None if wait is None else {"Retry-After": str(wait)}
            )
        if self._counter.take("fail"):
            return self.error(503, "Service temporarily unavailable (sandbox: injected)")
        if self._counter.take("reset"):
            reset_connection(request.transport)  # the upload cut off halfway: nothing taken
            return web.Response(status=400)
        return None

    async def answer(
        self, request: web.Request, fax: SandboxFax, accepted: web.Response
    ) -> web.StreamResponse:
        """The answer to an accepted fax, or one of the faults that may take its place."""
        if fax.callback_url is not None and self._counter.take("early_callback"):
            self.finish(fax)
            await self.callback(fax)
        if self._counter.take("drop"):
            # Accepted, but the client never learns it: close the connection unanswered.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=200)
        if self._counter.take("garble"):
            return web.Response(status=200, text="<html>upstream answered</html>")
        if self._counter.take("no_id"):
            return self.no_id_answer()
        if self._counter.take("stall"):
            return await stall(request)
        if self._counter.take("drip"):
            return await drip(request, accepted, self.faults.drip_seconds)
        return accepted

    # --- transmission --------------------------------------------------------

    def accept(self, fax: SandboxFax) -> None:
        # The outcome is fixed at acceptance so that "first N busy" follows arrival order
        # even if polls finish faxes out of order. Refused numbers don't use a busy slot.
        if self.faults.refuses_fax(fax.to):
            error: FaxError | None = self.refused_error
        elif self._counter.take("busy"):
            error = self.busy_error
        else:
            error = None
        self._by_ref[fax.ref] = fax
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
            log.error("sandbox fax: a transmission failed", task=task.get_name(), exc_info=exc)

    async def _transmit(self, fax: SandboxFax) -> None:
        if not fax.ready:
            failure = await self.prepare(fax)
            transmission = self._transmissions[fax.id]
            transmission.started = time.monotonic()
            if failure is not None:
                transmission.error = failure
            fax.ready = True
        half = self._transmit_seconds / 2
        await asyncio.sleep(half)
        self._start_sending(fax)
        await asyncio.sleep(self._transmit_seconds - half)
        # Finish unconditionally: the timer may fire a hair before the elapsed-time
        # threshold that _advance() uses.
        self.finish(fax)
        await self.callback(fax)

    def _advance(self, fax: SandboxFax) -> None:
        if not self._serving or not fax.ready:
            return
        elapsed = time.monotonic() - self._transmissions[fax.id].started
        if elapsed >= self._transmit_seconds:
            self.finish(fax)
        elif elapsed >= self._transmit_seconds / 2:
            self._start_sending(fax)

    @staticmethod
    def _start_sending(fax: SandboxFax) -> None:
        if fax.status == "queued":
            fax.status = "inprogress"

    def finish(self, fax: SandboxFax) -> None:
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
            "id": fax.ref,
            "to": fax.to,
            "header_text": fax.header_text,
            "tags": fax.tags,
            "status": fax.status,
            "created_at": iso(fax.created_at),
            "completed_at": iso(fax.completed_at),
        }
        text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        self._folder.write_bytes(f"{stem}.json", text.encode())
        log.info("sandbox fax: recorded a fax", file=f"{stem}.pdf")

    async def post(
        self,
        fax: SandboxFax,
        url: str,
        headers: Mapping[str, str],
        *,
        content: bytes | None = None,
        files: Mapping[str, tuple[str | None, bytes, str]] | None = None,
    ) -> None:
        """POST a callback: ``content`` as it is, or ``files`` as multipart/form-data;
        the receiver's answer is kept in ``callback_answers``."""
        assert self._client is not None, "callbacks only run between start() and stop()"
        try:
            response = await self._client.post(
                url, content=content, files=files, headers=dict(headers)
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # The receiver being down must not take the gateway down with it.
            log.warning("sandbox fax: a callback failed", fax_id=fax.ref, url=url, error=repr(exc))
            return
        with contextlib.suppress(ValueError):
            self.callback_answers.append((fax.id, response.status_code, response.json()))
        if response.is_error:
            log.warning(
                "sandbox fax: a callback was refused",
                fax_id=fax.ref,
                url=url,
                http_status=response.status_code,
            )

    async def fetch(self, url: str) -> bytes | None:
        """GET ``url`` (a media link): its body on 200, else None."""
        assert self._client is not None, "fetches only run between start() and stop()"
        try:
            response = await self._client.get(url)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.warning("sandbox fax: cannot fetch the media", url=url, error=repr(exc))
            return None
        return response.content if response.status_code == 200 else None


def has_basic_credentials(request: web.Request) -> bool:
    header = request.headers.get("Authorization")
    if header is None:
        return False
    try:
        auth = BasicAuth.decode(header)
    except ValueError:
        return False
    return bool(auth.login) and bool(auth.password)


async def read_multipart(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Plain fields and file parts of a multipart body, read into memory.

    Used instead of ``request.post()``, which spools files to temporary files through
    the default thread-pool executor; the sandbox keeps everything in the loop.
    """
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue  # nested multipart or nameless parts carry nothing a gateway reads
        if part.filename is not None:
            files.setdefault(part.name, bytes(await part.read()))
        else:
            fields.setdefault(part.name, await part.text())
    return fields, files
