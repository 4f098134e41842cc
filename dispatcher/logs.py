"""Logging: structlog over the standard library. Readable lines on a console by default,
one JSON object per line in production (``DISPATCHER_LOG_FORMAT=json``).

Our events go through structlog with their fields (``log.info("outcome", delivery_id=…)``);
libraries log through :mod:`logging`. Both reach one handler, rendered the same way, and
every configured secret is blanked from the finished line, tracebacks included, whatever
put it there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, Literal

import structlog

REDACTED = "[redacted]"
# A line per SQL call or SMTP command even at "info" drowns everything else.
_CHATTY = ("aiosqlite", "asyncio", "mail.log")
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
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def configure_logging(
    fmt: Literal["console", "json"], level: str, secrets: Iterable[str] = ()
) -> None:
    """Send every record (ours and libraries') to stderr as ``fmt``, at ``level`` and up."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _Redacting(
            secrets,
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_SHARED],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.dict_tracebacks] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    global _handler
    if _handler is not None:
        root.removeHandler(_handler)  # configured again (settings read): this one replaces it
    _handler = handler
    root.addHandler(handler)
    root.setLevel(level.upper())
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
