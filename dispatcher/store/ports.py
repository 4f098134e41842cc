"""What each consumer needs of the store, one Protocol each: the worker's queue, intake,
the operators' actions and reporting. :class:`~dispatcher.store.Store` satisfies them all
(over SQLite or PostgreSQL); :class:`~dispatcher.store.memory.MemoryQueue` satisfies the
worker's, and ``tests/integration/test_store_conformance.py`` holds both to the same
behaviour.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from dispatcher.models import (
    AppealReceipt,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    LogEntry,
    NewAppeal,
    NewDelivery,
    PacingRules,
    Settlement,
)
from dispatcher.store.fax_hours_sql import FaxLines
from dispatcher.store.notify import Subscriber
from dispatcher.store.operators import HeldAppeal, Selection
from dispatcher.store.sources_sql import SourceRow


class WorkerStore(Protocol):
    """The queue as a worker sees it: claim, keep the leases, record the outcomes."""

    def events(self, subscriber: Subscriber) -> contextlib.AbstractAsyncContextManager[None]:
        """While open, ``subscriber`` hears "queued" and "changed" (a wake-up; hearing
        nothing is always safe)."""
        ...

    async def claim_due_deliveries(
        self,
        worker: str,
        *,
        limit: int | Mapping[Channel, int],
        lease_seconds: float,
        now: dt.datetime | None = None,
        pacing: PacingRules | None = None,
        holding: Sequence[int] = (),
        fax_hours: FaxLines | None = None,
        providers: Mapping[Channel, str] | None = None,
    ) -> list[ClaimedDelivery]: ...

    async def renew_leases(
        self,
        worker: str,
        ids: Sequence[int],
        *,
        lease_seconds: float,
        now: dt.datetime | None = None,
    ) -> set[int]: ...

    async def record_outcomes(
        self, worker: str, updates: Sequence[DeliveryUpdate], *, now: dt.datetime | None = None
    ) -> None: ...

    async def pending_count(
        self, campaign_id: str | None = None, *, channels: Collection[Channel] | None = None
    ) -> int: ...

    async def next_due_at(
        self, *, channels: Collection[Channel] | None = None
    ) -> dt.datetime | None: ...


class IntakeStore(Protocol):
    """What taking an appeal needs: storing it whole, and counting hits on the limits."""

    async def create_appeal(
        self,
        appeal: NewAppeal,
        wanted: Sequence[NewDelivery],
        *,
        appeal_id: str | None = None,
        providers: Mapping[Channel, str | None] | None = None,
        now: dt.datetime | None = None,
    ) -> AppealReceipt: ...

    async def hits(self, key: str, window: int) -> int: ...

    async def count_hit(self, key: str, window: int) -> int: ...


class OperatorActions(Protocol):
    """What the campaign staff's actions need: retry, cancel, review, and what they act on."""

    async def change_status(
        self,
        delivery_id: int,
        *,
        allowed_from: frozenset[DeliveryStatus],
        to: DeliveryStatus,
        now: dt.datetime | None = None,
        error: ErrorInfo | None = None,
    ) -> LogEntry | None: ...

    async def change_selection(
        self,
        selection: Selection,
        *,
        allowed_from: frozenset[DeliveryStatus],
        to: DeliveryStatus,
        now: dt.datetime,
        error: ErrorInfo | None = None,
    ) -> int: ...

    async def count_selection(self, selection: Selection) -> dict[DeliveryStatus, int]: ...

    async def get_delivery(self, delivery_id: int) -> LogEntry | None: ...

    async def delivered_times(
        self, selection: Selection, *, since: dt.datetime
    ) -> list[tuple[Channel, dt.datetime]]: ...

    async def held_appeals(self, *, limit: int = 100) -> list[HeldAppeal]: ...

    async def held_count(self) -> int: ...

    async def release_held(
        self, appeal_id: str, *, approve: bool, now: dt.datetime, error: ErrorInfo | None
    ) -> int: ...

    async def appeal_campaign(self, appeal_id: str) -> str | None: ...


class ReportingStore(Protocol):
    """What the reported total is counted from (reads only)."""

    async def appeal_counts(
        self, campaign_id: str, *, rehearsal: bool = False
    ) -> tuple[int, int]: ...

    async def delivery_counts(self, campaign_id: str) -> list[tuple[str, str, str, bool, int]]: ...

    async def hand_off_counts(self, campaign_id: str) -> tuple[dict[str, int], int]: ...

    async def reported_action_counts(self, campaign_id: str) -> list[tuple[str, str, int]]: ...

    async def settlement_counts(self, campaign_id: str) -> dict[Settlement, int]: ...

    async def source_counts(self, campaign_id: str) -> list[SourceRow]: ...
