"""The ``dispatcher`` command line."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from pydantic import ValidationError

from dispatcher.cli.parser import build_parser
from dispatcher.cli.usage import UsageError
from dispatcher.logs import configure_logging
from dispatcher.output import err
from dispatcher.service import ServiceError
from dispatcher.settings import ConfigurationError, Settings
from dispatcher.worker import WorkerStopped

__all__ = ["UsageError", "build_parser", "main"]


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "DISPATCHER_" + "__".join(str(p).upper() for p in first["loc"])
        raise UsageError(f"setting {name} is invalid: {first['msg']}") from None


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (fewer system calls per socket operation: the
    worker makes many), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# Commands that run until stopped: their log says what they do (info); the others only
# warn.
LONG_RUNNING = frozenset({"serve", "worker"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("console", "debug" if args.verbose else "warning")
    try:
        settings = _settings()
        default = "info" if args.command in LONG_RUNNING else "warning"
        level = "debug" if args.verbose else settings.log_level or default
        configure_logging(settings.log_format, level, settings.secret_values())
        return int(_run(args.func(settings, args)))
    # One sentence on one line, however narrow the terminal (soft_wrap: no inserted breaks).
    except ServiceError as exc:
        err.print(f"error: {exc.message}", markup=False, soft_wrap=True)
        return 1
    except WorkerStopped as exc:
        err.print(f"error: the worker stopped: {exc}", markup=False, soft_wrap=True)
        return 1
    except (UsageError, ConfigurationError) as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
