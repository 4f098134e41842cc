"""The store: the only place that runs SQL. The deliveries table is the queue."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    case,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatcher.models import (
    AppealReceipt,
    AttemptEntry,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    LogEntry,
    NewAppeal,
    NewDelivery,
    utcnow,
)
from dispatcher.store.engine import WRITE_OPTION, create_engine, migrate
from dispatcher.store.intake_sql import insert_appeal
from dispatcher.store.queue_sql import (
    PENDING,
    apply_update,
    expire_overdue,
    lease_due,
    load_claimed,
    open_attempts,
)
from dispatcher.store.schema import appeals, attempts, deliveries, reported_actions

_CLAIM_LOCK_KEY = 7_261_022


def _error(row: Any, prefix: str) -> ErrorInfo | None:
    cls = getattr(row, f"{prefix}class")
    if cls is None:
        return None
    return ErrorInfo(cls, getattr(row, f"{prefix}code"), getattr(row, f"{prefix}message") or "")


class Store:
    """Async access to supporters, appeals, deliveries and attempts.

    Open with ``await Store.open(url)``, which also brings the schema up to date.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queueing this process's writers here, instead of
        # letting each spin in SQLite's busy handler, keeps tail latency low under load.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (SQLite: one at a time per process; others still wait on
        BEGIN IMMEDIATE with the busy timeout)."""
        if self._sqlite_writer is None:
            async with self._write_engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_writer, self._write_engine.begin() as conn:
            yield conn

    @classmethod
    async def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        store = cls(create_engine(url))
        if migrate_schema:
            await migrate(store.engine)
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ------------------------------------------------------------------ intake

    async def create_appeal(
        self, appeal: NewAppeal, wanted: Sequence[NewDelivery], *, now: dt.datetime | None = None
    ) -> AppealReceipt:
        """Store supporter, appeal and one queued delivery per new (target, channel), atomically.

        Pairs this supporter already has a delivery for in this campaign are not created again;
        they come back in ``already_counted``. If none is new, no appeal is created and the
        existing appeal's id is returned. Safe against concurrent duplicates (unique index).
        """
        now = now or utcnow()
        for _ in range(3):
            try:
                async with self._writing() as conn:
                    return await insert_appeal(conn, appeal, wanted, now)
            except IntegrityError:
                # A concurrent identical submission won the race: look again.
                continue
        raise RuntimeError("could not store the appeal after 3 tries of concurrent duplicates")

    # ------------------------------------------------------------------ the queue

    async def claim_due_deliveries(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: float,
        now: dt.datetime | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries to ``worker`` and open an attempt for each send.

        Due: queued and ``next_attempt_at`` passed; sending with an expired lease (its worker
        died; that attempt's outcome becomes ``unknown``); awaiting confirmation and its
        next status poll is due. Queued deliveries past their campaign deadline are expired
        here instead. A fax number has at most one fax in flight: a fax is not claimed while
        another to the same number is being sent or awaits confirmation, and only the oldest
        due fax per number is claimed.
        """
        now = now or utcnow()
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        async with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                # Serialise claims so the per-number fax check sees every other claim.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK_KEY}
                )
            await expire_overdue(conn, now)
            claimed = await lease_due(conn, worker, now=now, limit=limit, lease_until=lease_until)
            if not claimed:
                return []
            sends = [(i, n) for i, status, n in claimed if status is DeliveryStatus.SENDING]
            await open_attempts(conn, worker, sends, now)
            return await load_claimed(conn, [delivery_id for delivery_id, _, _ in claimed])

    async def record_outcomes(
        self, worker: str, updates: Sequence[DeliveryUpdate], *, now: dt.datetime | None = None
    ) -> int:
        """Record a batch of outcomes in one transaction; returns how many deliveries changed.

        A delivery whose lease this worker no longer holds is left alone (another worker took
        it over after the lease expired), but its attempt row is still closed.
        """
        if not updates:
            return 0
        now = now or utcnow()
        changed = 0
        async with self._writing() as conn:
            for u in updates:
                changed += await apply_update(
                    conn,
                    u,
                    deliveries.c.lease_owner == worker,
                    now,
                    close_attempt_regardless=True,
                )
        return changed

    async def release(
        self, worker: str, ids: Sequence[int], *, now: dt.datetime | None = None
    ) -> None:
        """Hand leased deliveries back untouched (shutdown before their send began)."""
        if not ids:
            return
        now = now or utcnow()
        d = deliveries
        async with self._writing() as conn:
            sending = d.c.status == DeliveryStatus.SENDING.value
            await conn.execute(
                attempts.delete().where(
                    attempts.c.delivery_id.in_(ids),
                    attempts.c.outcome.is_(None),
                    attempts.c.worker == worker,
                )
            )
            await conn.execute(
                update(d)
                .where(d.c.id.in_(ids), d.c.lease_owner == worker)
                .values(
                    status=case((sending, DeliveryStatus.QUEUED.value), else_=d.c.status),
                    attempts=case((sending, d.c.attempts - 1), else_=d.c.attempts),
                    lease_until=None,
                    lease_owner=None,
                    updated_at=now,
                )
            )

    async def pending_count(self, campaign_id: str | None = None) -> int:
        """Deliveries still queued, sending or awaiting confirmation."""
        query = select(func.count()).select_from(deliveries).where(deliveries.c.status.in_(PENDING))
        if campaign_id is not None:
            query = query.where(deliveries.c.campaign_id == campaign_id)
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def next_due_at(self) -> dt.datetime | None:
        """The earliest time a pending delivery becomes due (ignoring pacing)."""
        d = deliveries
        due = case(
            (d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until),
            else_=d.c.next_attempt_at,
        )
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(d.c.status, d.c.lease_until, d.c.next_attempt_at)
                    .where(d.c.status.in_(PENDING))
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

    # ------------------------------------------------------------------ reading

    async def delivery_counts(self, campaign_id: str) -> list[tuple[str, str, str, int]]:
        """(target_id, channel, status, count) for every combination present."""
        d = deliveries
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(d.c.target_id, d.c.channel, d.c.status, func.count())
                    .where(d.c.campaign_id == campaign_id)
                    .group_by(d.c.target_id, d.c.channel, d.c.status)
                )
            ).all()
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def appeal_counts(self, campaign_id: str) -> tuple[int, int]:
        """(appeals, distinct supporters) for a campaign."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.count(appeals.c.supporter_id.distinct())).where(
                        appeals.c.campaign_id == campaign_id
                    )
                )
            ).one()
        return int(row[0]), int(row[1])

    async def list_deliveries(
        self,
        *,
        campaign_id: str | None = None,
        status: DeliveryStatus | None = None,
        appeal_id: str | None = None,
        channel: Channel | None = None,
        target_id: str | None = None,
        updated_since: dt.datetime | None = None,
        before_id: int | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """The delivery log: oldest change first, or newest delivery first for paging.

        Paging: pass the last id of a page as ``before_id`` with ``newest_first``.
        """
        d = deliveries
        if newest_first:
            query = select(d).order_by(d.c.id.desc())
        else:
            query = select(d).order_by(d.c.updated_at, d.c.id)
        if campaign_id is not None:
            query = query.where(d.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(d.c.status == status.value)
        if channel is not None:
            query = query.where(d.c.channel == channel.value)
        if target_id is not None:
            query = query.where(d.c.target_id == target_id)
        if before_id is not None:
            query = query.where(d.c.id < before_id)
        if appeal_id is not None:
            query = query.where(d.c.appeal_id == appeal_id)
        if updated_since is not None:
            query = query.where(d.c.updated_at >= updated_since)
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_log_entry(r) for r in rows]

    async def get_delivery(self, delivery_id: int) -> LogEntry | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))
            ).first()
        return None if row is None else _log_entry(row)

    async def appeal_campaign(self, appeal_id: str) -> str | None:
        """The campaign of an appeal, or None when there is no such appeal."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(appeals.c.campaign_id).where(appeals.c.id == appeal_id)
            )
        return None if found is None else str(found)

    async def change_status(
        self,
        delivery_id: int,
        *,
        allowed_from: frozenset[DeliveryStatus],
        to: DeliveryStatus,
        now: dt.datetime | None = None,
        error: ErrorInfo | None = None,
    ) -> LogEntry | None:
        """Move a delivery to ``to`` only from one of ``allowed_from`` (an operator action).

        Returns the updated row, or None when the delivery is in another status (or absent).
        Going back to ``queued`` makes it due at once.
        """
        now = now or utcnow()
        d = deliveries
        values: dict[str, Any] = {
            "status": to.value,
            "updated_at": now,
            "lease_until": None,
            "lease_owner": None,
        }
        if to is DeliveryStatus.QUEUED:
            values["next_attempt_at"] = now
        if error is not None:
            values |= {
                "last_error_class": error.error_class,
                "last_error_code": error.code,
                "last_error_message": error.message,
            }
        async with self._writing() as conn:
            result = await conn.execute(
                update(d)
                .where(d.c.id == delivery_id, d.c.status.in_([s.value for s in allowed_from]))
                .values(values)
            )
            if result.rowcount == 0:
                return None
            row = (await conn.execute(select(d).where(d.c.id == delivery_id))).one()
        return _log_entry(row)

    async def awaiting_fax(self, provider_ref: str) -> ClaimedDelivery | None:
        """The fax awaiting confirmation under this gateway id (for a status callback)."""
        d = deliveries
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(d.c.id).where(
                    d.c.channel == Channel.FAX.value,
                    d.c.provider_ref == provider_ref,
                    d.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value,
                )
            )
            if found is None:
                return None
            claimed = await load_claimed(conn, [int(found)])
        return claimed[0] if claimed else None

    async def settle_awaiting(
        self, update_: DeliveryUpdate, provider_ref: str, *, now: dt.datetime | None = None
    ) -> bool:
        """Record a provider's verdict on a delivery still awaiting confirmation.

        Settled or re-sent deliveries are left alone (a duplicate or late callback has no
        effect). Returns whether anything changed.
        """
        condition = and_(
            deliveries.c.provider_ref == provider_ref,
            deliveries.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value,
        )
        async with self._writing() as conn:
            return await apply_update(conn, update_, condition, now or utcnow()) > 0

    async def record_reported_action(
        self,
        *,
        campaign_id: str,
        target_id: str,
        kind: str,
        supporter_name: str | None,
        supporter_email: str | None,
        now: dt.datetime | None = None,
    ) -> int:
        async with self._writing() as conn:
            result = await conn.execute(
                insert(reported_actions)
                .values(
                    campaign_id=campaign_id,
                    target_id=target_id,
                    kind=kind,
                    supporter_name=supporter_name,
                    supporter_email_lc=supporter_email.lower() if supporter_email else None,
                    created_at=now or utcnow(),
                )
                .returning(reported_actions.c.id)
            )
            return int(result.scalar_one())

    async def reported_action_counts(self, campaign_id: str) -> list[tuple[str, str, int]]:
        """(target_id, kind, count) of self-reported actions."""
        r = reported_actions
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(r.c.target_id, r.c.kind, func.count())
                    .where(r.c.campaign_id == campaign_id)
                    .group_by(r.c.target_id, r.c.kind)
                )
            ).all()
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def status_counts(self) -> list[tuple[str, str, int]]:
        """(channel, status, count) over all campaigns: for metrics."""
        d = deliveries
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(d.c.channel, d.c.status, func.count()).group_by(d.c.channel, d.c.status)
                )
            ).all()
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    async def list_attempts(self, delivery_id: int) -> list[AttemptEntry]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(attempts)
                    .where(attempts.c.delivery_id == delivery_id)
                    .order_by(attempts.c.number)
                )
            ).all()
        return [
            AttemptEntry(
                delivery_id=r.delivery_id,
                number=r.number,
                worker=r.worker,
                started_at=r.started_at,
                finished_at=r.finished_at,
                outcome=r.outcome,
                error=_error(r, "error_"),
                provider_ref=r.provider_ref,
                response_summary=r.response_summary,
            )
            for r in rows
        ]


def _log_entry(r: Row[Any]) -> LogEntry:
    return LogEntry(
        id=r.id,
        appeal_id=r.appeal_id,
        campaign_id=r.campaign_id,
        target_id=r.target_id,
        channel=Channel(r.channel),
        address=r.address,
        status=DeliveryStatus(r.status),
        attempts=r.attempts,
        provider_ref=r.provider_ref,
        last_error=_error(r, "last_error_"),
        next_attempt_at=r.next_attempt_at,
        updated_at=r.updated_at,
    )
