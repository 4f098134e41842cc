"""Logging: structlog over the standard library. Readable lines on a console by default,
one JSON object per line in production (``DISPATCHER_LOG_FORMAT=json``).

Our events go through structlog with their fields (``log.info("outcome", delivery_id=…)``);
libraries log through :mod:`logging`. Both reach one handler, rendered the same way, and
every configured secret is blanked from the finished line, tracebacks included, whatever
put it there.

A traceback is plain text: file, line and code, never the frames' local variables (they
hold supporters' data and secrets, and rendering them took seconds per error). Records are
handed to a thread that renders and writes them, so nothing is formatted on the event loop.
"""

from __future__ import annotations

import atexit
import copy
import logging
import logging.handlers
import queue
import sys
from collections.abc import Iterable
from typing import Any, Literal

import structlog

REDACTED = "[redacted]"
# A line per SQL call, SMTP command or HTTP request even at "info" drowns everything else.
_CHATTY = ("aiosqlite", "asyncio", "mail.log", "httpx")
# Shorter "secrets" would blank ordinary words; settings refuse nothing, so skip them.
_SHORTEST_SECRET = 6

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# Without configure() (tests, a library user): our events become ordinary log records
# with their fields as attributes, and whatever logging setup is in place shows them.
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.processors.format_exc_info,
        structlog.stdlib.render_to_log_kwargs,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


_handler: logging.Handler | None = None
_listener: logging.handlers.QueueListener | None = None
# Secrets learnt while running (an access token a command printed), blanked like the
# settings' own. Replaced whole, never changed in place: the writing thread reads it.
_learnt: frozenset[str] = frozenset()


def redact_also(secret: str) -> None:
    """Blank ``secret`` from every log line written from now on, as the settings' secrets are."""
    global _learnt
    if len(secret) >= _SHORTEST_SECRET and secret not in _learnt:
        _learnt = _learnt | {secret}


class _HandOver(logging.handlers.QueueHandler):
    """Queues a record as it is, exception included, for the writing thread to render
    (the standard QueueHandler would format it here, on the caller's thread)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg = record.getMessage()  # its arguments may change before it is written
        record.args = None
        return record


def _stop_listener() -> None:
    """Write out what is queued and stop the writing thread (at exit, or reconfigured)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class _Redacting(structlog.stdlib.ProcessorFormatter):
    """Renders a record, then blanks every secret in the finished text."""

    def __init__(self, secrets: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Longest first: a secret that contains another is blanked whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= _SHORTEST_SECRET}, key=len, reverse=True
        )

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        secrets = self._secrets
        if _learnt:
            secrets = sorted({*secrets, *_learnt}, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _drop_color_message(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """uvicorn passes its message again with terminal colour codes, as ``color_message``;
    the line already says it."""
    event.pop("color_message", None)
    return event


def configure_logging(
    fmt: Literal["console", "json"], level: str, secrets: Iterable[str] = ()
) -> None:
    """Send every record (ours and libraries') to stderr as ``fmt``, at ``level`` and up."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(
        _Redacting(
            secrets,
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), _drop_color_message, *_SHARED],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    global _handler, _listener
    if _handler is not None:
        root.removeHandler(_handler)  # configured again (settings read): this one replaces it
    _stop_listener()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, writer)
    _listener.start()
    _handler = _HandOver(records)
    root.addHandler(_handler)
    root.setLevel(level.upper())
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))


atexit.register(_stop_listener)
