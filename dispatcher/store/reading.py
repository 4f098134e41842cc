"""Reading the delivery log, its attempts and the counts the reports are made of."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Row, exists, func, select

from dispatcher.models import (
    SANDBOX,
    AttemptEntry,
    Channel,
    DeliveryStatus,
    ErrorInfo,
    LogEntry,
    Settlement,
)
from dispatcher.store.base import StoreBase
from dispatcher.store.operators import address_of
from dispatcher.store.schema import appeals, attempts, deliveries, reported_actions


def _error(row: Any, prefix: str) -> ErrorInfo | None:
    cls = getattr(row, f"{prefix}class")
    if cls is None:
        return None
    return ErrorInfo(cls, getattr(row, f"{prefix}code"), getattr(row, f"{prefix}message") or "")


class LogReader(StoreBase):
    """The delivery log and its counts (reads only)."""

    async def delivery_counts(self, campaign_id: str) -> list[tuple[str, str, str, bool, int]]:
        """(target_id, channel, status, rehearsal, count) for every combination present;
        ``rehearsal``: it went (or goes) to the sandbox."""
        d = deliveries
        rehearsal = sandboxed(d.c.provider).label("rehearsal")
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
        live = exists().where(d.c.appeal_id == a.c.id, ~sandboxed(d.c.provider))
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
        return [log_entry(r) for r in rows]

    async def get_delivery(self, delivery_id: int) -> LogEntry | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))
            ).first()
        return None if row is None else log_entry(row)

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


def log_entry(r: Row[Any]) -> LogEntry:
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


def sandboxed(provider: ColumnElement[Any]) -> ColumnElement[bool]:
    """True for what went (or goes) to the built-in sandbox; rows from before providers
    were recorded (NULL) count as they always did."""
    return func.coalesce(provider, "") == SANDBOX
