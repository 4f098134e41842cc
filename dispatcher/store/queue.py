"""The queue half of the store: claims, the lease heartbeat, outcomes, pauses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import (
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    PacingRules,
    QueueEvent,
    utcnow,
)
from dispatcher.store.base import StoreBase
from dispatcher.store.claim_one_sql import claim_in_one, never_held_back
from dispatcher.store.claimed_sql import open_and_load
from dispatcher.store.fax_hours_sql import FaxLines, hold_for_fax_hours
from dispatcher.store.pacing_sql import Leased, pace, pause_channels
from dispatcher.store.queue_sql import (
    PENDING,
    expire_overdue,
    lease_due,
)
from dispatcher.store.record_sql import apply_update, record_many
from dispatcher.store.schema import deliveries
from dispatcher.store.x_accounts_sql import sweep_x_accounts

_CLAIM_LOCK_KEY = 7_261_022


class QueueStore(StoreBase):
    """The deliveries table as a queue shared by every worker."""

    # When claims last expired overdue deliveries: once a second is enough (it is a scan).
    _expired_at: dt.datetime | None = None
    # How long an X post waits for its supporter to connect an account before it is
    # handed off (the composition root sets DISPATCHER_TWITTER__CONNECT_WAIT_MINUTES).
    x_connect_wait: dt.timedelta = dt.timedelta(hours=1)

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
        """Lease due deliveries to ``worker`` and open an attempt for each send.

        With ``pacing`` and ``fax_hours``, sends their rates or a closed fax line do not
        allow yet go back to the queue, due when they will be (see :meth:`_hold_back`); a
        channel paused by its provider's rate limit is not claimed at all.

        ``limit`` is a total, or a number per channel (a worker claims what its free send
        slots can take). Due: queued and ``next_attempt_at`` passed; sending with an expired
        lease (its worker died; that attempt's outcome becomes ``unknown``); awaiting
        confirmation and its next status poll is due. Queued deliveries past their campaign
        deadline are expired here instead. A fax number has at most one fax in flight: a fax
        is not claimed while another to the same number is being sent or awaits
        confirmation, and only the oldest due fax per number is claimed. What the worker
        says it is ``holding`` is never taken back, even past its lease. Each attempt
        opened, and its delivery, record the provider ``providers`` names for its channel.
        """
        given_now = now
        per_channel = {None: limit} if isinstance(limit, int) else limit
        wanted = [(channel, n) for channel, n in per_channel.items() if n > 0]
        if not wanted:
            return []
        if self.dialect == "postgresql" and all(never_held_back(c, pacing) for c, _ in wanted):
            return await self._claim_in_one(worker, wanted, lease_seconds, holding, providers, now)
        events: list[QueueEvent] = []
        async with self._writing(events) as conn:
            # Stamped once the write lock is held, so stamps follow commit order.
            now = given_now or utcnow()
            lease_until = now + dt.timedelta(seconds=lease_seconds)
            await self._prepare_claim(conn, [c for c, _ in wanted], now)
            claimed: list[Leased] = []
            for channel, n in wanted:
                claimed += await lease_due(
                    conn, worker, now=now, limit=n, lease_until=lease_until, channel=channel,
                    holding=holding,
                )  # fmt: skip
            claimed = await self._hold_back(conn, claimed, now, pacing, fax_hours)
            if not claimed:
                return []
            sends = [
                (c.id, c.attempts, c.channel) for c in claimed if c.status is DeliveryStatus.SENDING
            ]
            ids = [c.id for c in claimed]
            loaded = await open_and_load(conn, worker, sends, now, providers or {}, ids)
            if sends:
                events.append(QueueEvent.CHANGED)
        return loaded

    async def _claim_in_one(
        self,
        worker: str,
        wanted: list[tuple[Channel | None, int]],
        lease_seconds: float,
        holding: Sequence[int],
        providers: Mapping[Channel, str] | None,
        given_now: dt.datetime | None,
    ) -> list[ClaimedDelivery]:
        """The claim of ``claim_due_deliveries`` in one statement a channel, outside any
        transaction (see :mod:`dispatcher.store.claim_one_sql`); the once-a-second
        expiry goes first, in a transaction of its own."""
        now = given_now or utcnow()
        if self._expiry_due(now):
            async with self._writing() as conn:
                await self._expire(conn, now)
        params = {
            "now": now,
            "lease_until": now + dt.timedelta(seconds=lease_seconds),
            "worker": worker,
            "holding": list(holding),
        }
        loaded: list[ClaimedDelivery] = []
        async with self.engine.connect() as conn:
            alone = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for channel, n in wanted:
                assert channel is not None  # never_held_back
                params |= {"claim_limit": n, "provider": (providers or {}).get(channel)}
                loaded += await claim_in_one(alone, channel, params)
            sends = any(c.status is DeliveryStatus.SENDING for c in loaded)
            if sends:
                await self.notifier.announce(alone, QueueEvent.CHANGED)
        if sends:
            self.notifier.publish(QueueEvent.CHANGED)
        return loaded

    @staticmethod
    async def _hold_back(
        conn: AsyncConnection,
        claimed: list[Leased],
        now: dt.datetime,
        pacing: PacingRules | None,
        fax_hours: FaxLines | None,
    ) -> list[Leased]:
        """The leases that may go now. A fax whose line is closed goes back to the queue,
        due at its next opening (:mod:`dispatcher.store.fax_hours_sql`), before pacing
        counts it; then sends their rates do not allow yet go back, due when they will be
        (:mod:`dispatcher.store.pacing_sql`). Neither uses an attempt."""
        if fax_hours and claimed:
            claimed = await hold_for_fax_hours(conn, claimed, fax_hours, now)
        if pacing is not None and claimed:
            claimed = await pace(conn, claimed, pacing, now)
        return claimed

    async def _prepare_claim(
        self, conn: AsyncConnection, channels: list[Channel | None], now: dt.datetime
    ) -> None:
        """Take the fax claim lock (PostgreSQL) and expire overdue deliveries (once a second)."""
        if conn.dialect.name == "postgresql" and any(c in (None, Channel.FAX) for c in channels):
            # Serialise fax claims so the per-number check sees every other claim.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK_KEY})
        if self._expiry_due(now):
            await self._expire(conn, now)

    def _expiry_due(self, now: dt.datetime) -> bool:
        return self._expired_at is None or not 0 <= (now - self._expired_at).total_seconds() < 1

    async def _expire(self, conn: AsyncConnection, now: dt.datetime) -> None:
        await expire_overdue(conn, now)
        await sweep_x_accounts(conn, now, self.x_connect_wait)
        self._expired_at = now

    async def renew_leases(
        self,
        worker: str,
        ids: Sequence[int],
        *,
        lease_seconds: float,
        now: dt.datetime | None = None,
    ) -> set[int]:
        """The heartbeat: extend the leases ``worker`` holds on ``ids``; returns those renewed.

        Only the deliveries the worker knows it holds: a claim whose answer was lost (the
        connection dropped as it committed) leaves leases nobody renews, so they run out.
        """
        if not ids:
            return set()
        d = deliveries
        async with self._writing() as conn:
            now = now or utcnow()
            result = await conn.execute(
                update(d)
                .where(d.c.id.in_(ids), d.c.status.in_(PENDING), d.c.lease_owner == worker)
                .values(lease_until=now + dt.timedelta(seconds=lease_seconds))
                .returning(d.c.id)
            )
            return set(result.scalars())

    async def record_outcomes(
        self, worker: str, updates: Sequence[DeliveryUpdate], *, now: dt.datetime | None = None
    ) -> None:
        """Record outcomes in one transaction.

        A delivery whose lease this worker no longer holds, or that has moved on to another
        attempt, is left alone (another worker took it over after the lease expired), but
        the attempt row this worker opened is still closed with what it learned.
        """
        if not updates:
            return
        numbered = [u for u in updates if u.attempt is not None]
        given_now = now
        async with self._writing([QueueEvent.CHANGED]) as conn:
            # Stamped once the write lock is held, so stamps follow commit order.
            now = given_now or utcnow()
            if numbered:
                await record_many(conn, worker, numbered, now)
            await self._pause_for(conn, [u for u in updates if u.pause_until is not None])
            for u in updates:
                if u.attempt is None:
                    await apply_update(
                        conn,
                        u,
                        deliveries.c.lease_owner == worker,
                        now,
                        close_attempt_regardless=True,
                    )

    @staticmethod
    async def _pause_for(conn: AsyncConnection, paused: list[DeliveryUpdate]) -> None:
        """Pause the channels of deliveries a provider refused with a rate limit."""
        if not paused:
            return
        d = deliveries
        rows = await conn.execute(
            select(d.c.id, d.c.channel).where(d.c.id.in_([u.delivery_id for u in paused]))
        )
        channel_of = {row.id: Channel(row.channel) for row in rows}
        pauses: dict[Channel, tuple[dt.datetime, str]] = {}
        for u in paused:
            assert u.pause_until is not None
            channel = channel_of[u.delivery_id]
            reason = u.error.message if u.error else "rate limited"
            if channel not in pauses or pauses[channel][0] < u.pause_until:
                pauses[channel] = (u.pause_until, reason)
        await pause_channels(conn, pauses)

    async def pending_count(
        self, campaign_id: str | None = None, *, channels: Collection[Channel] | None = None
    ) -> int:
        """Deliveries still queued, sending or awaiting confirmation (on ``channels``)."""
        query = select(func.count()).select_from(deliveries).where(deliveries.c.status.in_(PENDING))
        if campaign_id is not None:
            query = query.where(deliveries.c.campaign_id == campaign_id)
        if channels is not None:
            query = query.where(deliveries.c.channel.in_([c.value for c in channels]))
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def next_due_at(
        self, *, channels: Collection[Channel] | None = None
    ) -> dt.datetime | None:
        """The earliest time a pending delivery (on ``channels``) becomes due (ignoring
        pacing)."""
        d = deliveries
        due = case(
            (d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until),
            else_=d.c.next_attempt_at,
        )
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(d.c.status, d.c.lease_until, d.c.next_attempt_at)
                    .where(
                        d.c.status.in_(PENDING),
                        *([d.c.channel.in_([c.value for c in channels])] if channels else []),
                    )
                    .order_by(due)
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        when = (
            row.lease_until if row.status == DeliveryStatus.SENDING.value else row.next_attempt_at
        )
        return when if isinstance(when, dt.datetime) else None
