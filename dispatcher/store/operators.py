"""What operators see and do beyond the delivery log: their sessions, the audit log of
their actions, the supporter list, and actions on a whole filtered selection."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, case, cast, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import Channel, DeliveryStatus, ErrorInfo, QueueEvent
from dispatcher.store.base import StoreBase
from dispatcher.store.schema import (
    appeals,
    deliveries,
    operator_audit,
    operator_sessions,
    supporters,
)

REJECTED_PREFIX = "rejected:"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: dt.datetime
    operator: str
    action: str  # one of service.audit.ACTIONS
    subject: str
    address: str | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """An operator session that has not ended: who opened it, and the keyed fingerprint of
    the token they opened it with."""

    operator: str
    token_fingerprint: str


@dataclass(frozen=True, slots=True)
class SupporterRow:
    """One supporter in one campaign (supporters whose data was deleted are not listed)."""

    campaign_id: str
    name: str
    email: str
    country: str | None
    appeals: int
    last_appeal_at: dt.datetime
    contact_ok: bool  # agreed, on at least one appeal, to hear from the organisation
    # Where their appeals came from: each tag (source, utm_source, utm_medium, utm_campaign)
    # as their appeals carried it (the greatest, if they differ), or None.
    sources: tuple[str | None, ...] = (None, None, None, None)


@dataclass(frozen=True, slots=True)
class HeldAppeal:
    """An appeal whose supporter-written letter waits for an operator's review."""

    appeal_id: str
    campaign_id: str
    supporter_name: str
    supporter_country: str | None
    language: str
    subject: str
    body: str
    tweet: str | None
    created_at: dt.datetime
    deliveries: tuple[tuple[str, Channel], ...]  # (target id, channel), each held


@dataclass(frozen=True, slots=True)
class Selection:
    """Deliveries chosen by the log's filter (None: any)."""

    campaign_id: str | None = None
    status: DeliveryStatus | None = None
    channel: Channel | None = None
    target_id: str | None = None


def status_values(to: DeliveryStatus, now: dt.datetime, error: ErrorInfo | None) -> dict[str, Any]:
    """The columns an operator's action sets: the status, no lease, due at once when
    queued again, and the reason (a cancellation's) when given."""
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
    return values


def _selected(selection: Selection) -> list[ColumnElement[bool]]:
    d = deliveries
    chosen = {
        d.c.status: selection.status.value if selection.status else None,
        d.c.campaign_id: selection.campaign_id,
        d.c.channel: selection.channel.value if selection.channel else None,
        d.c.target_id: selection.target_id,
    }
    return [column == value for column, value in chosen.items() if value is not None]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


class OperatorStore(StoreBase):
    async def create_session(
        self,
        id_hash: str,
        *,
        operator: str,
        token_fingerprint: str,
        expires_at: dt.datetime,
        now: dt.datetime,
    ) -> None:
        """Store a new operator session (by its id's hash); ended ones are cleared out."""
        s = operator_sessions
        async with self._writing() as conn:
            await conn.execute(s.delete().where(s.c.expires_at <= now))
            await conn.execute(
                s.insert().values(
                    id_hash=id_hash,
                    operator=operator,
                    token_fingerprint=token_fingerprint,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    async def find_session(self, id_hash: str, now: dt.datetime) -> SessionRow | None:
        """The session, while it has not ended; None otherwise."""
        s = operator_sessions
        query = select(s.c.operator, s.c.token_fingerprint).where(
            s.c.id_hash == id_hash, s.c.expires_at > now
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return None if found is None else SessionRow(str(found[0]), str(found[1]))

    async def end_session(self, id_hash: str) -> None:
        s = operator_sessions
        async with self._writing() as conn:
            await conn.execute(s.delete().where(s.c.id_hash == id_hash))

    async def record_audit(self, entry: AuditEntry) -> None:
        async with self._writing() as conn:
            await conn.execute(
                operator_audit.insert().values(
                    at=entry.at,
                    operator=entry.operator,
                    action=entry.action,
                    subject=entry.subject,
                    address=entry.address,
                )
            )

    async def list_audit(self, *, limit: int = 50) -> list[AuditEntry]:
        """The newest entries first."""
        o = operator_audit
        query = select(o).order_by(o.c.at.desc(), o.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEntry(r.at, r.operator, r.action, r.subject, r.address) for r in rows]

    async def list_supporters(
        self, *, campaign_id: str | None, search: str | None, limit: int | None
    ) -> list[SupporterRow]:
        """Supporters per campaign, the most recent first; ``search`` matches any part of
        a name or an email address, whatever its case."""
        a, s = appeals, supporters
        agreed = func.sum(case((a.c.contact_ok, 1), else_=0))
        last = func.max(a.c.created_at)
        query = (
            select(
                a.c.campaign_id,
                s.c.name,
                s.c.email,
                s.c.country,
                func.count(),
                last,
                agreed,
                *(
                    func.max(a.c[tag])
                    for tag in ("source", "utm_source", "utm_medium", "utm_campaign")
                ),
            )
            .join(s, s.c.id == a.c.supporter_id)
            .where(a.c.supporter_name != "")
            .group_by(a.c.campaign_id, s.c.id, s.c.name, s.c.email, s.c.country)
            .order_by(last.desc(), s.c.id.desc())
        )
        if campaign_id is not None:
            query = query.where(a.c.campaign_id == campaign_id)
        if search:
            pattern = _like(search)
            query = query.where(
                or_(
                    func.lower(s.c.name).like(pattern, escape="\\"),
                    s.c.email_lc.like(pattern, escape="\\"),
                )
            )
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            SupporterRow(r[0], r[1], r[2], r[3], int(r[4]), _aware(r[5]), bool(r[6]), tuple(r[7:]))
            for r in rows
        ]

    async def change_selection(
        self,
        selection: Selection,
        *,
        allowed_from: frozenset[DeliveryStatus],
        to: DeliveryStatus,
        now: dt.datetime,
        error: ErrorInfo | None = None,
    ) -> int:
        """Move every selected delivery in one of ``allowed_from`` to ``to``, in one
        transaction (see Store.change_status for one). Returns how many moved."""
        d = deliveries
        values = status_values(to, now, error)
        statement = update(d).where(d.c.status.in_([s.value for s in allowed_from]))
        statement = statement.where(*_selected(selection))
        events = [QueueEvent.CHANGED]
        if to is DeliveryStatus.QUEUED:
            events.append(QueueEvent.QUEUED)
        announced: list[QueueEvent] = []
        async with self._writing(announced) as conn:
            changed = int((await conn.execute(statement.values(values))).rowcount)
            if changed:
                announced += events
        return changed

    async def count_selection(self, selection: Selection) -> dict[DeliveryStatus, int]:
        """How many selected deliveries are in each status."""
        d = deliveries
        query = select(d.c.status, func.count()).group_by(d.c.status)
        query = query.where(*_selected(selection))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {DeliveryStatus(r[0]): int(r[1]) for r in rows}

    async def delivered_times(
        self, selection: Selection, *, since: dt.datetime
    ) -> list[tuple[Channel, dt.datetime]]:
        """When each selected delivery delivered since ``since`` was last changed (its
        status in ``selection`` is ignored: these are the delivered ones)."""
        d = deliveries
        chosen = Selection(selection.campaign_id, None, selection.channel, selection.target_id)
        query = select(d.c.channel, d.c.updated_at).where(
            d.c.status == DeliveryStatus.DELIVERED.value,
            d.c.updated_at >= since,
            *_selected(chosen),
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(Channel(r[0]), r[1]) for r in rows]

    async def held_count(self) -> int:
        """How many appeals have letters waiting for review."""
        d = deliveries
        query = select(func.count(d.c.appeal_id.distinct())).where(
            d.c.status == DeliveryStatus.HELD.value
        )
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def held_appeals(self, *, limit: int = 100) -> list[HeldAppeal]:
        """Appeals with held deliveries, the oldest first (the next to read)."""
        a, d = appeals, deliveries
        held = DeliveryStatus.HELD.value
        query = (
            select(a, d.c.target_id, d.c.channel)
            .join(d, d.c.appeal_id == a.c.id)
            .where(d.c.status == held)
            .order_by(a.c.created_at, a.c.id, d.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, HeldAppeal] = {}
        for r in rows:
            pair = (str(r.target_id), Channel(r.channel))
            if r.id in found:
                kept = found[r.id]
                found[r.id] = dataclasses.replace(kept, deliveries=(*kept.deliveries, pair))
                continue
            if len(found) == limit:
                break
            found[r.id] = HeldAppeal(
                r.id, r.campaign_id, r.supporter_name, r.supporter_country, r.language,
                r.subject, r.body, r.tweet, r.created_at, (pair,),
            )  # fmt: skip
        return list(found.values())

    async def release_held(
        self, appeal_id: str, *, approve: bool, now: dt.datetime, error: ErrorInfo | None
    ) -> int:
        """Queue an appeal's held deliveries (approved) or cancel them (rejected), in one
        transaction; returns how many (0: none was held, or another operator was first)."""
        d = deliveries
        to = DeliveryStatus.QUEUED if approve else DeliveryStatus.CANCELLED
        values = status_values(to, now, None if approve else error)
        if not approve:  # the supporter may take part again, with the campaign's letter
            values["supporter_email_lc"] = retired_identity(d.c.id, d.c.supporter_email_lc)
        statement = (
            update(d)
            .where(d.c.appeal_id == appeal_id, d.c.status == DeliveryStatus.HELD.value)
            .values(values)
        )
        events = [QueueEvent.CHANGED, *([QueueEvent.QUEUED] if approve else [])]
        announced: list[QueueEvent] = []
        async with self._writing(announced) as conn:
            changed = await _await_supporter(conn, appeal_id, now) if approve else 0
            changed += int((await conn.execute(statement)).rowcount)
            if changed:
                announced += events
        return changed


def retired_identity(delivery_id: Any, identity: Any) -> Any:
    """What a rejected delivery is counted under instead of its supporter's identity
    (``rejected:<id>:<identity>``): it no longer stands for that supporter's message to
    that official, so they may send one again. ``address_of`` reads the identity back."""
    return literal(REJECTED_PREFIX) + cast(delivery_id, String) + literal(":") + identity


def address_of(identity: str) -> str:
    """The identity a delivery stands for, whether or not it was rejected."""
    if identity.startswith(REJECTED_PREFIX):
        return identity.split(":", 2)[2]
    return identity


async def _await_supporter(conn: AsyncConnection, appeal_id: str, now: dt.datetime) -> int:
    """An approved appeal's emails that would carry an address not confirmed yet wait for
    their supporter (see DeliveryStatus.AWAITING_SUPPORTER) instead of being queued."""
    a, d = appeals, deliveries
    unconfirmed = exists().where(a.c.id == appeal_id, a.c.reply_to, a.c.confirmed_at.is_(None))
    result = await conn.execute(
        update(d)
        .where(
            d.c.appeal_id == appeal_id,
            d.c.status == DeliveryStatus.HELD.value,
            d.c.channel == Channel.EMAIL.value,
            unconfirmed,
        )
        .values(status=DeliveryStatus.AWAITING_SUPPORTER.value, updated_at=now)
    )
    return int(result.rowcount)


def _aware(value: Any) -> dt.datetime:
    """func.max() of a UTCDateTime column comes back as SQLite's text or a naive value."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
