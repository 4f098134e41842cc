"""The store: the only place that runs SQL. The deliveries table is the queue."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import (
    and_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

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
    QueueEvent,
    utcnow,
)
from dispatcher.store.claimed_sql import load_claimed
from dispatcher.store.engine import upsert
from dispatcher.store.group_commit import GroupCommit
from dispatcher.store.hits_sql import Hit, count_hits
from dispatcher.store.intake_batch import Submission, insert_appeals
from dispatcher.store.intake_sql import insert_appeal
from dispatcher.store.operators import OperatorStore, status_values
from dispatcher.store.purge_sql import Purged, purge_campaign
from dispatcher.store.queue import QueueStore
from dispatcher.store.reading import LogReader, log_entry
from dispatcher.store.receipts import ReceiptStore
from dispatcher.store.record_sql import apply_update
from dispatcher.store.schema import (
    deliveries,
    rate_counts,
    reported_actions,
)
from dispatcher.store.sources_sql import SourcesStore
from dispatcher.store.x_accounts_sql import XAccountStore


class Store(LogReader, QueueStore, ReceiptStore, OperatorStore, XAccountStore, SourcesStore):
    """Async access to supporters, appeals, deliveries and attempts.

    Open with ``await Store.open(url)``, which also brings the schema up to date.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._intake = GroupCommit(self._create_appeals)
        self._hits = GroupCommit(self._count_hits)
        self._spent_reads = {}

    async def close(self) -> None:
        await self._intake.close()
        await self._hits.close()
        await super().close()

    # ------------------------------------------------------------------ intake

    async def create_appeal(
        self,
        appeal: NewAppeal,
        wanted: Sequence[NewDelivery],
        *,
        appeal_id: str | None = None,
        providers: Mapping[Channel, str | None] | None = None,
        now: dt.datetime | None = None,
    ) -> AppealReceipt:
        """Store supporter, appeal (as ``appeal_id``, else a new random id) and one queued
        delivery per new (target, channel), atomically; answered once committed.

        Pairs this supporter already has a delivery for in this campaign are not created again;
        they come back in ``already_counted``. If none is new, no appeal is stored and the
        earlier appeal's supporter gets a notice. Safe against concurrent duplicates (unique
        index). Each delivery records the provider ``providers`` names for its channel
        (``sandbox``: a rehearsal). See :func:`insert_appeal`.

        Appeals handed in while a transaction is being written share the next one (group
        commit, :mod:`dispatcher.store.intake_batch`); each is still all or nothing.
        """
        submission = Submission(
            appeal, wanted, appeal_id or secrets.token_urlsafe(16), providers or {}, now
        )
        return await self._intake.submit(submission)

    async def _create_appeals(self, batch: list[Submission]) -> Sequence[AppealReceipt]:
        """One transaction for the whole batch; if a concurrent duplicate (another
        process's) breaks it, each appeal again in a transaction of its own."""
        try:
            events: list[QueueEvent] = []
            async with self._writing(events) as conn:
                # Stamped once the write lock is held, so stamps follow commit order.
                receipts = await insert_appeals(conn, batch, utcnow())
                if any(r.created for r in receipts):
                    events += [QueueEvent.QUEUED, QueueEvent.CHANGED]
            return receipts
        except IntegrityError:
            return [await self._create_one(s) for s in batch]

    async def _create_one(self, s: Submission) -> AppealReceipt:
        for _ in range(3):
            try:
                events: list[QueueEvent] = []
                async with self._writing(events) as conn:
                    receipt = await insert_appeal(
                        conn,
                        s.appeal,
                        s.wanted,
                        s.now or utcnow(),
                        appeal_id=s.appeal_id,
                        providers=s.providers,
                    )
                    if receipt.created:
                        events += [QueueEvent.QUEUED, QueueEvent.CHANGED]
                return receipt
            except IntegrityError:
                # A concurrent identical submission won the race: look again.
                continue
        raise RuntimeError("could not store the appeal after 3 tries of concurrent duplicates")

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
        values = status_values(to, now, error)
        events: list[QueueEvent] = []
        async with self._writing(events) as conn:
            result = await conn.execute(
                update(d)
                .where(d.c.id == delivery_id, d.c.status.in_([s.value for s in allowed_from]))
                .values(values)
            )
            if result.rowcount == 0:
                return None
            row = (await conn.execute(select(d).where(d.c.id == delivery_id))).one()
            events.append(QueueEvent.CHANGED)
            if to is DeliveryStatus.QUEUED:
                events.append(QueueEvent.QUEUED)
        return log_entry(row)

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
        events: list[QueueEvent] = []
        async with self._writing(events) as conn:
            changed = await apply_update(conn, update_, condition, now or utcnow()) > 0
            if changed:
                events.append(QueueEvent.CHANGED)
        return changed

    async def record_reported_action(
        self,
        *,
        campaign_id: str,
        target_id: str,
        kind: str,
        supporter_name: str | None,
        supporter_email: str,
        now: dt.datetime | None = None,
    ) -> tuple[int, bool]:
        """Store a self-reported action once per (campaign, email, target, kind); returns
        its id and whether it is new (False: that supporter had reported it already)."""
        r = reported_actions
        email = supporter_email.lower()
        async with self._writing() as conn:
            statement = upsert(r, conn.dialect.name).values(
                campaign_id=campaign_id,
                target_id=target_id,
                kind=kind,
                supporter_name=supporter_name,
                supporter_email_lc=email,
                created_at=now or utcnow(),
            )
            added = await conn.execute(statement.on_conflict_do_nothing().returning(r.c.id))
            new_id = added.scalar_one_or_none()
            if new_id is not None:
                return int(new_id), True
            existing = await conn.execute(
                select(r.c.id).where(
                    r.c.campaign_id == campaign_id,
                    r.c.supporter_email_lc == email,
                    r.c.target_id == target_id,
                    r.c.kind == kind,
                )
            )
            return int(existing.scalar_one()), False

    async def purge_campaign(
        self, campaign_id: str, *, created_before: dt.datetime, key: bytes
    ) -> Purged:
        """Remove supporters' personal data from a campaign's settled appeals made before
        ``created_before``, in one transaction (see :mod:`dispatcher.store.purge_sql`)."""
        async with self._writing() as conn:
            return await purge_campaign(conn, campaign_id, created_before=created_before, key=key)

    async def backup_to(self, path: Path) -> None:
        """A consistent copy of a SQLite database while it is in use (SQLite's online
        backup: pages copied under a read lock, writers wait only for each step)."""
        source = self.engine.url.database
        if self.dialect != "sqlite" or not source:
            raise ValueError("the online backup is SQLite's; for PostgreSQL use pg_dump")

        def copy() -> None:
            with (
                contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
                contextlib.closing(sqlite3.connect(path)) as dst,
            ):
                src.backup(dst, pages=1024)

        await asyncio.to_thread(copy)

    async def hits(self, key: str, window: int) -> int:
        """The hits counted for ``key`` in ``window`` (counting none)."""
        r = rate_counts
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(r.c.hits).where(r.c.key == key, r.c.window == window))
        return int(found or 0)

    async def count_hit(self, key: str, window: int) -> int:
        """One more hit for ``key`` in ``window``; the window's hits so far, this one included.
        Starting a window forgets the key's older ones. Hits counted together share one
        transaction (:mod:`dispatcher.store.hits_sql`)."""
        return await self._hits.submit((key, window))

    async def _count_hits(self, hits: list[Hit]) -> list[int]:
        async with self._writing() as conn:
            return await count_hits(conn, hits)

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(select(1))
