"""The one error every service function raises for a bad request: what, which field, why."""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ErrorKind(enum.StrEnum):
    """What went wrong, as callers map it (the web to a status code, the CLI to a sentence)."""

    NOT_FOUND = "not_found"  # no such campaign, appeal or delivery
    CLOSED = "closed"  # the campaign's deadline has passed
    TOO_LARGE = "too_large"
    INVALID = "invalid"  # a value is not accepted; ``field`` names it
    CONFLICT = "conflict"  # the delivery's status does not allow the action
    UNAVAILABLE = "unavailable"  # this server cannot do it now (what is missing is logged)


class ServiceError(ValueError):
    """A request was refused before anything changed.

    ``message`` is one sentence naming the bad value and what is accepted; ``field`` names
    the input it is about (``supporter.email``, ``status``…), or None. ``reason`` says
    which rule refused it (``empty``, ``too_long``…) and ``params`` the figures involved,
    so that a page can say the same in its own words and language.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        field: str | None = None,
        reason: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field
        self.reason = reason
        self.params: Mapping[str, object] = params or {}


def invalid(field: str, message: str, reason: str | None = None, **params: object) -> ServiceError:
    return ServiceError(ErrorKind.INVALID, message, field, reason, params)
