"""The store: the only place that runs SQL. The deliveries table is the queue."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from dispatcher.models import (
    SANDBOX,
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
    QueueEvent,
    Settlement,
    utcnow,
)
from dispatcher.store.engine import upsert
from dispatcher.store.intake_sql import insert_appeal
from dispatcher.store.operators import OperatorStore, address_of, status_values
from dispatcher.store.purge_sql import Purged, purge_campaign
from dispatcher.store.queue import QueueStore
from dispatcher.store.queue_sql import load_claimed
from dispatcher.store.receipts import ReceiptStore
from dispatcher.store.record_sql import apply_update
from dispatcher.store.schema import (
    appeals,
    attempts,
    deliveries,
    rate_counts,
    reported_actions,
)
from dispatcher.store.sources_sql import SourcesStore
from dispatcher.store.x_accounts_sql import XAccountStore


def _error(row: Any, prefix: str) -> ErrorInfo | None:
    cls = getattr(row, f"{prefix}class")
    if cls is None:
        return None
    return ErrorInfo(cls, getattr(row, f"{prefix}code"), getattr(row, f"{prefix}message") or "")


class Store(QueueStore, ReceiptStore, OperatorStore, XAccountStore, SourcesStore):
    """Async access to supporters, appeals, deliveries and attempts.

    Open with ``await Store.open(url)``, which also brings the schema up to date.
    """

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
        delivery per new (target, channel), atomically.

        Pairs this supporter already has a delivery for in this campaign are not created again;
        they come back in ``already_counted``. If none is new, no appeal is stored and the
        earlier appeal's supporter gets a notice. Safe against concurrent duplicates (unique
        index). Each delivery records the provider ``providers`` names for its channel
        (``sandbox``: a rehearsal). See :func:`insert_appeal`.
        """
        for _ in range(3):
            try:
                events: list[QueueEvent] = []
                async with self._writing(events) as conn:
                    # Stamped once the write lock is held, so stamps follow commit order.
                    receipt = await insert_appeal(
                        conn,
                        appeal,
                        wanted,
                        now or utcnow(),
                        appeal_id=appeal_id or secrets.token_urlsafe(16),
                        providers=providers or {},
                    )
                    if receipt.created:
                        events += [QueueEvent.QUEUED, QueueEvent.CHANGED]
                return receipt
            except IntegrityError:
                # A concurrent identical submission won the race: look again.
                continue
        raise RuntimeError("could not store the appeal after 3 tries of concurrent duplicates")

    # ------------------------------------------------------------------ reading

    async def delivery_counts(self, campaign_id: str) -> list[tuple[str, str, str, bool, int]]:
        """(target_id, channel, status, rehearsal, count) for every combination present;
        ``rehearsal``: it went (or goes) to the sandbox."""
        d = deliveries
        rehearsal = _rehearsal(d.c.provider).label("rehearsal")
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(d.c.target_id, d.c.channel, d.c.status, rehearsal, func.count())
                    .where(d.c.campaign_id == campaign_id)
                    .group_by(d.c.target_id, d.c.channel, d.c.status, rehearsal)
                )
            ).all()
        return [(r[0], r[1], r[2], bool(r[3]), int(r[4])) for r in rows]

    async def settlement_counts(self, campaign_id: str) -> dict[Settlement, int]:
        """Delivered deliveries per settlement (those whose outcome was once unknown)."""
        d = deliveries
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(d.c.settlement, func.count())
                    .where(
                        d.c.campaign_id == campaign_id,
                        d.c.status == DeliveryStatus.DELIVERED.value,
                        d.c.settlement.is_not(None),
                    )
                    .group_by(d.c.settlement)
                )
            ).all()
        return {Settlement(r[0]): int(r[1]) for r in rows}

    async def appeal_counts(self, campaign_id: str, *, rehearsal: bool = False) -> tuple[int, int]:
        """(appeals, distinct supporters) for a campaign: those with a delivery to a real
        provider, or (``rehearsal``) those whose every delivery went to the sandbox."""
        a, d = appeals, deliveries
        live = exists().where(d.c.appeal_id == a.c.id, ~_rehearsal(d.c.provider))
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.count(a.c.supporter_id.distinct())).where(
                        a.c.campaign_id == campaign_id, ~live if rehearsal else live
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

    async def appeal_address(self, appeal_id: str) -> str | None:
        """The lower-cased address an appeal was sent with (its alias once its data was
        deleted: it starts with ``purged:``), or None for an unknown appeal."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(deliveries.c.supporter_email_lc)
                .where(deliveries.c.appeal_id == appeal_id)
                .limit(1)
            )
        return None if found is None else address_of(str(found))

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
        Starting a window forgets the key's older ones."""
        r = rate_counts
        counted = (
            upsert(r, self.dialect)
            .values(key=key, window=window, hits=1)
            .on_conflict_do_update(
                index_elements=[r.c.key, r.c.window], set_={"hits": r.c.hits + 1}
            )
            .returning(r.c.hits)
        )
        async with self._writing() as conn:
            hits = int((await conn.execute(counted)).scalar_one())
            if hits == 1:
                await conn.execute(r.delete().where(r.c.key == key, r.c.window < window))
        return hits

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
                provider=r.provider,
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
        settlement=Settlement(r.settlement) if r.settlement else None,
        provider=r.provider,
    )


def _rehearsal(provider: ColumnElement[Any]) -> ColumnElement[bool]:
    """True for what went (or goes) to the built-in sandbox; rows from before providers
    were recorded (NULL) count as they always did."""
    return func.coalesce(provider, "") == SANDBOX
