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

from dispatcher.models import Channel, ClaimedDelivery, DeliveryUpdate, PacingRules
from dispatcher.store.fax_hours_sql import FaxLines
from dispatcher.store.notify import Subscriber


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
