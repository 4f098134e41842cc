"""The worker's queue in memory: the :class:`~dispatcher.store.ports.WorkerStore` rules
without a database, for tests of the worker and for reasoning about the queue.

It keeps the rules the SQL store keeps (``tests/integration/test_store_conformance.py``
runs the same scenarios against both): due deliveries oldest first, per channel limits, a
send raising the attempt count, a status poll keeping it, an expired lease rescued by any
worker (never one the claimer says it holds), leases renewed only for their owner,
outcomes applied only while the worker still holds that attempt. It does not pace sends,
keep fax lines or fax hours, or expire deliveries at their deadline: asked to, it refuses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dispatcher.models import (
    PENDING_STATUSES,
    AppealReceipt,
    AttemptOutcome,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliverySummary,
    DeliveryUpdate,
    NewAppeal,
    NewDelivery,
    PacingRules,
    QueueEvent,
    utcnow,
)
from dispatcher.store.fax_hours_sql import FaxLines
from dispatcher.store.notify import Subscriber


@dataclass
class _Row:
    claimed: ClaimedDelivery
    next_attempt_at: dt.datetime
    lease_owner: str | None = None
    lease_until: dt.datetime | None = None
    outcomes: list[AttemptOutcome | None] = field(default_factory=list)


class MemoryQueue:
    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._subscribers: set[Subscriber] = set()

    @contextlib.asynccontextmanager
    async def _listening(self, subscriber: Subscriber) -> AsyncIterator[None]:
        self._subscribers.add(subscriber)
        try:
            yield
        finally:
            self._subscribers.discard(subscriber)

    def events(self, subscriber: Subscriber) -> contextlib.AbstractAsyncContextManager[None]:
        return self._listening(subscriber)

    async def create_appeal(
        self, appeal: NewAppeal, wanted: Sequence[NewDelivery], *, now: dt.datetime | None = None
    ) -> AppealReceipt:
        """One queued delivery per (target, channel), due at once."""
        now = now or utcnow()
        appeal_id = f"memory-{len(self._rows) + 1}"
        created = []
        for new in wanted:
            delivery_id = len(self._rows) + 1
            self._rows[delivery_id] = _Row(_claimed(delivery_id, appeal_id, appeal, new), now)
            created.append(
                DeliverySummary(delivery_id, new.target_id, new.channel, DeliveryStatus.QUEUED)
            )
        for subscriber in list(self._subscribers):
            subscriber(QueueEvent.QUEUED)
        return AppealReceipt(appeal_id, tuple(created), ())

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
    ) -> list[ClaimedDelivery]:
        if pacing is not None or fax_hours:
            raise ValueError("the memory queue neither paces sends nor keeps fax hours")
        now = now or utcnow()
        per_channel = {None: limit} if isinstance(limit, int) else dict(limit)
        claimed = []
        for channel, n in per_channel.items():
            due = [r for r in self._rows.values() if self._due(r, channel, now, holding)]
            due.sort(key=lambda r: (r.next_attempt_at, r.claimed.id))
            for row in due[:n]:
                claimed.append(self._lease(row, worker, now, lease_seconds))
        return claimed

    @staticmethod
    def _due(row: _Row, channel: Channel | None, now: dt.datetime, holding: Sequence[int]) -> bool:
        c = row.claimed
        if channel is not None and c.channel is not channel:
            return False
        expired = row.lease_until is not None and row.lease_until < now
        if c.status is DeliveryStatus.QUEUED:
            return row.next_attempt_at <= now
        if c.status is DeliveryStatus.SENDING:
            return expired and c.id not in holding
        if c.status is DeliveryStatus.AWAITING_CONFIRMATION:
            lease_free = row.lease_until is None or expired
            return row.next_attempt_at <= now and lease_free and c.id not in holding
        return False

    @staticmethod
    def _lease(row: _Row, worker: str, now: dt.datetime, seconds: float) -> ClaimedDelivery:
        c = row.claimed
        if c.status is not DeliveryStatus.AWAITING_CONFIRMATION:
            if c.status is DeliveryStatus.SENDING:
                row.outcomes[-1] = AttemptOutcome.UNKNOWN  # cut off by the lost lease
            unknown = AttemptOutcome.UNKNOWN in row.outcomes
            c = replace(
                c,
                status=DeliveryStatus.SENDING,
                attempts=c.attempts + 1,
                earlier_outcome_unknown=unknown,
            )
            row.outcomes.append(None)
        row.claimed = c
        row.lease_owner, row.lease_until = worker, now + dt.timedelta(seconds=seconds)
        return c

    async def renew_leases(
        self,
        worker: str,
        ids: Sequence[int],
        *,
        lease_seconds: float,
        now: dt.datetime | None = None,
    ) -> set[int]:
        now = now or utcnow()
        renewed = set()
        for delivery_id in ids:
            row = self._rows.get(delivery_id)
            pending = row is not None and row.claimed.status in PENDING_STATUSES
            if row is not None and pending and row.lease_owner == worker:
                row.lease_until = now + dt.timedelta(seconds=lease_seconds)
                renewed.add(delivery_id)
        return renewed

    async def record_outcomes(
        self, worker: str, updates: Sequence[DeliveryUpdate], *, now: dt.datetime | None = None
    ) -> None:
        for u in updates:
            row = self._rows[u.delivery_id]
            c = row.claimed
            if row.lease_owner != worker or (u.attempt is not None and c.attempts != u.attempt):
                continue  # taken over: another worker holds it now
            if u.attempt_outcome is not None and row.outcomes:
                row.outcomes[-1] = u.attempt_outcome
            row.claimed = replace(c, status=u.status, provider_ref=u.provider_ref or c.provider_ref)
            row.lease_owner = row.lease_until = None
            if u.next_attempt_at is not None:
                row.next_attempt_at = u.next_attempt_at
        for subscriber in list(self._subscribers):
            subscriber(QueueEvent.CHANGED)

    async def pending_count(
        self, campaign_id: str | None = None, *, channels: Collection[Channel] | None = None
    ) -> int:
        return sum(
            1 for row in self._pending(channels) if campaign_id in (None, row.claimed.campaign_id)
        )

    async def next_due_at(
        self, *, channels: Collection[Channel] | None = None
    ) -> dt.datetime | None:
        times = [
            row.lease_until if row.claimed.status is DeliveryStatus.SENDING else row.next_attempt_at
            for row in self._pending(channels)
        ]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def _pending(self, channels: Collection[Channel] | None) -> list[_Row]:
        return [
            row
            for row in self._rows.values()
            if row.claimed.status in PENDING_STATUSES
            and (channels is None or row.claimed.channel in channels)
        ]


def _claimed(delivery_id: int, appeal_id: str, a: NewAppeal, new: NewDelivery) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=delivery_id,
        appeal_id=appeal_id,
        campaign_id=a.campaign_id,
        target_id=new.target_id,
        target_name=new.target_name,
        salutation=new.salutation,
        channel=new.channel,
        address=new.address,
        status=DeliveryStatus.QUEUED,
        attempts=0,
        provider_ref=None,
        expires_at=a.expires_at,
        supporter_name=a.supporter_name,
        supporter_email=a.supporter_email,
        supporter_country=a.supporter_country,
        language=a.language,
        subject=a.subject,
        body=a.body,
        tweet=a.tweet,
        earlier_outcome_unknown=False,
        reply_to=a.reply_to,
    )
