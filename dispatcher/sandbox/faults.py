"""Fault injection settings shared by the sandbox servers.

A :class:`Faults` value is a plain, immutable description handed to one server; the
server keeps its own :class:`FaultCounter` so that "the first N" always means the
first N requests *that server* saw, in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal[
    "fail",
    "rate_limit",
    "busy",
    "drop",
    "garble",
    "no_id",
    "reset",
    "stall",
    "drip",
    "early_callback",
    "not_enrolled",
    "suspended",
]
"""The counted fault kinds; each names a ``<kind>_first`` field of :class:`Faults`."""


@dataclass(frozen=True)
class Faults:
    """Which failures a sandbox server injects.

    Every ``*_first`` count applies to the first N requests (or messages) that reach
    that check, in arrival order. A request consumed by one fault kind counts toward
    that kind only, so ``rate_limit_first=1, fail_first=1`` yields 429, then 503, then
    normal handling.

    - ``fail_first``: transient failure (SMTP 451 at end of DATA, HTTP 503).
    - ``rate_limit_first``: fax and X only, HTTP 429.
    - ``busy_first``: fax only; the first N accepted faxes that are not refused end in
      status ``failure`` with a busy line.
    - ``drop_first``: fax and X; the first N faxes or tweets that would be accepted are
      accepted and recorded, then the connection is closed without any response.
    - ``garble_first``: fax and X; accepted and recorded, then answered 2xx with a body
      that is not JSON (a proxy's page, a truncated answer).
    - ``no_id_first``: fax and X; accepted and recorded, then answered 2xx with JSON that
      has no id.
    - ``reset_first``: the connection is reset (TCP RST) mid-transfer, before the
      request or message is taken: nothing recorded, no answer.
    - ``stall_first``: accepted and recorded, then no answer at all, the connection held
      open until the client gives up (a read timeout).
    - ``drip_first``: accepted and recorded, then the answer sent one byte every
      ``drip_seconds`` (a server that drips).
    - ``early_callback_first``: fax only; the first N faxes sent with a callback URL are
      transmitted at once and their callback is delivered *before* the submit request
      is answered (the usual callback follows too, as a duplicate).
    - ``not_enrolled_first``: X only; 403 ``client-not-enrolled`` (the app lacks the access
      level posting needs).
    - ``suspended_first``: X only; 403, the posting account is suspended.
    - ``refuse``: addresses refused permanently: e-mail addresses and X handles are
      compared lower-cased (handles without ``@``), fax numbers in E.164 form
      (``+12024952138``).
    - ``rate_limit_reset_seconds``: X sends ``x-rate-limit-reset`` = now + this (epoch
      seconds); the fax gateway sends it as ``Retry-After``. None: a 429 without either.
    - ``delay_seconds``: email only; every message waits this long at the end of DATA
      before the answer (a slow relay).
    - ``x_token_seconds``: X only; how long a supporter's access token lives (X's own:
      two hours). Under a minute, the adapter finds it about to expire and refreshes it
      before the first post.
    - ``x_app_limit``: X only; posts the app may make in 24 hours (X's app cap), sent as
      ``x-app-limit-24hour-*``; past it, 429.
    """

    fail_first: int = 0
    rate_limit_first: int = 0
    busy_first: int = 0
    drop_first: int = 0
    garble_first: int = 0
    no_id_first: int = 0
    reset_first: int = 0
    stall_first: int = 0
    drip_first: int = 0
    drip_seconds: float = 1.0
    early_callback_first: int = 0
    not_enrolled_first: int = 0
    suspended_first: int = 0
    refuse: frozenset[str] = frozenset()
    rate_limit_reset_seconds: int | None = 1
    delay_seconds: float = 0.0
    x_token_seconds: float = 7200.0
    x_app_limit: int = 10_000

    def refuses_email(self, address: str) -> bool:
        """True if ``address`` is refused (case-insensitive)."""
        return address.lower() in self._refused_lower

    def refuses_fax(self, number: str) -> bool:
        """True if the E.164 ``number`` is refused (exact match)."""
        return number in self.refuse

    def refused_handle_in(self, handles: set[str]) -> str | None:
        """The first refused X handle among ``handles`` (lower-cased, without '@')."""
        for handle in sorted(handles):
            if handle in self._refused_handles:
                return handle
        return None

    @property
    def _refused_lower(self) -> frozenset[str]:
        return frozenset(item.lower() for item in self.refuse)

    @property
    def _refused_handles(self) -> frozenset[str]:
        # Callers may write handles with or without the leading '@'.
        return frozenset(item.lower().removeprefix("@") for item in self.refuse)


@dataclass
class FaultCounter:
    """Per-server running counts of the faults already injected.

    ``take(kind)`` answers "should this request get fault ``kind``?" and, if so,
    consumes one of the ``kind`` budget. Call it in the server's fault order and stop
    at the first ``True`` so that a request counts toward one kind only.
    """

    faults: Faults
    used: dict[FaultKind, int] = field(default_factory=dict)

    def take(self, kind: FaultKind) -> bool:
        """Consume one ``kind`` fault if any is left; False once the budget is spent."""
        budget = {
            "fail": self.faults.fail_first,
            "rate_limit": self.faults.rate_limit_first,
            "busy": self.faults.busy_first,
            "drop": self.faults.drop_first,
            "garble": self.faults.garble_first,
            "no_id": self.faults.no_id_first,
            "reset": self.faults.reset_first,
            "stall": self.faults.stall_first,
            "drip": self.faults.drip_first,
            "early_callback": self.faults.early_callback_first,
            "not_enrolled": self.faults.not_enrolled_first,
            "suspended": self.faults.suspended_first,
        }[kind]
        used = self.used.get(kind, 0)
        if used >= budget:
            return False
        self.used[kind] = used + 1
        return True
