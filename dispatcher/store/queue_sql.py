"""Statements for the queue: which deliveries are due, leasing them, expiry (loading what
was claimed is in :mod:`dispatcher.store.claimed_sql`, writing the outcomes in
:mod:`dispatcher.store.record_sql`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    all_,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningUpdate, Update

from dispatcher.models import (
    PENDING_STATUSES,
    UNCONFIRMED_AT_DEADLINE,
    AttemptOutcome,
    Channel,
    DeliveryStatus,
)
from dispatcher.store.pacing_sql import Leased, account_key
from dispatcher.store.schema import UTCDateTime, attempts, deliveries, pacing

# An attempt cut off because its worker's lease ran out (it died, or stalled).
LEASE_EXPIRED = "LeaseExpired"

# Status values of deliveries not yet settled (queued, sending, awaiting confirmation).
PENDING = [s.value for s in PENDING_STATUSES]


def _fax_line_free(now: BindParameter[dt.datetime]) -> ColumnElement[bool]:
    """A fax to this number may go: none to it is being sent or awaits confirmation, and
    no older one to it is due first."""
    d = deliveries
    other = deliveries.alias("other")
    earlier = deliveries.alias("earlier")
    fax = Channel.FAX.value
    # Two EXISTS with an equality on status each, so both are index searches on
    # ix_deliveries_line instead of a walk through every delivery to that number.
    awaiting_on_line = exists().where(
        other.c.channel == fax,
        other.c.address == d.c.address,
        other.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value,
        other.c.id != d.c.id,
    )
    # A fax being sent blocks its line even after its worker died (lease expired): it may
    # still be transmitting, and its rescue (which asks the gateway first) comes first.
    sending_on_line = exists().where(
        other.c.channel == fax,
        other.c.address == d.c.address,
        other.c.status == DeliveryStatus.SENDING.value,
        other.c.id != d.c.id,
    )
    older_fax_waiting = exists().where(
        earlier.c.channel == fax,
        earlier.c.address == d.c.address,
        earlier.c.id < d.c.id,
        earlier.c.status == DeliveryStatus.QUEUED.value,
        earlier.c.next_attempt_at <= now,
    )
    return and_(~awaiting_on_line, ~sending_on_line, ~older_fax_waiting)


def due_candidates(channel: Channel | None = None, *, lock: bool = False) -> Select[Any]:
    """Due deliveries (of ``channel``, or any), oldest due first; binds ``now``,
    ``claim_limit`` and ``holding``. With ``lock`` (PostgreSQL), rows are locked, skipping
    locked ones, and ``holding`` is an array.

    One ordered read per status (queued and due; being sent under an expired lease;
    awaiting a status poll that is due), each reading ``ix_deliveries_due`` in order and
    stopping at ``claim_limit``: a claim costs the same with ten or a million queued.
    """
    d = deliveries
    now = bindparam("now", type_=UTCDateTime)
    limit = bindparam("claim_limit", type_=Integer)
    # A provider's 429 pauses its whole channel (see pacing_sql.pause_channels).
    paused_key = literal(account_key(channel)) if channel else d.c.channel + literal(":account")
    paused = exists().where(pacing.c.key == paused_key, pacing.c.paused_until > now)
    if channel is None:
        paced: Any = or_(d.c.channel != Channel.FAX.value, _fax_line_free(now))
    elif channel is Channel.FAX:
        paced = _fax_line_free(now)
    else:
        paced = true()
    sendable = and_(d.c.expires_at > now, ~paused, paced)
    # What the claiming worker still holds (in flight, or its outcome not yet written)
    # is never taken back by its own claim, even once the lease has run out meanwhile
    # (a database that was locked for longer than the lease). On PostgreSQL an array: one
    # statement however many are held, not one rendered (and prepared) per count.
    if lock:
        not_held = d.c.id != all_(bindparam("holding", type_=ARRAY(Integer)))
    else:
        not_held = d.c.id.not_in(bindparam("holding", expanding=True))
    waiting = {
        DeliveryStatus.QUEUED: and_(d.c.next_attempt_at <= now, sendable),
        # Its worker died or stalled: the outcome of that attempt is unknown.
        DeliveryStatus.SENDING: and_(d.c.lease_until < now, sendable, not_held),
        DeliveryStatus.AWAITING_CONFIRMATION: and_(
            d.c.next_attempt_at <= now,
            or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            not_held,
        ),
    }
    branches = []
    for status, condition in waiting.items():
        branch = select(d.c.id, d.c.next_attempt_at).where(d.c.status == status.value, condition)
        if channel is not None:
            branch = branch.where(d.c.channel == channel.value)
        branch = branch.order_by(d.c.next_attempt_at, d.c.id).limit(limit)
        if lock:
            branch = branch.with_for_update(skip_locked=True)
        branches.append(select(branch.subquery()))
    due = union_all(*branches).subquery()
    return select(due.c.id).order_by(due.c.next_attempt_at, due.c.id).limit(limit)


def leasing(channel: Channel | None, dialect: str) -> Update:
    """UPDATE that leases due deliveries; binds ``now``, ``claim_limit``, ``holding``,
    ``lease_until`` and ``worker``. A send becomes ``sending`` with its attempt count
    raised; a status poll keeps ``awaiting_confirmation`` and its count."""
    candidates = due_candidates(channel, lock=dialect == "postgresql")
    d = deliveries
    polling = d.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value
    return (
        update(d)
        # Equalities, not IN (a list of literals): claim_one_sql runs it compiled once.
        .where(d.c.id.in_(candidates.scalar_subquery()), or_(*(d.c.status == s for s in PENDING)))
        .values(
            status=case(
                (polling, DeliveryStatus.AWAITING_CONFIRMATION.value),
                else_=DeliveryStatus.SENDING.value,
            ),
            attempts=case((polling, d.c.attempts), else_=d.c.attempts + 1),
            lease_until=bindparam("lease_until", type_=UTCDateTime),
            lease_owner=bindparam("worker", type_=String),
            updated_at=bindparam("now", type_=UTCDateTime),
        )
    )


def _lease_statement(channel: Channel | None, dialect: str) -> ReturningUpdate[Any]:
    """:func:`leasing`, returning what pacing needs. Built once per channel and dialect."""
    d = deliveries
    return leasing(channel, dialect).returning(
        d.c.id, d.c.status, d.c.attempts, d.c.channel, d.c.address, d.c.campaign_id
    )


_LEASE_STATEMENTS: dict[tuple[Channel | None, str], ReturningUpdate[Any]] = {}


async def lease_due(
    conn: AsyncConnection,
    worker: str,
    *,
    now: dt.datetime,
    limit: int,
    lease_until: dt.datetime,
    channel: Channel | None = None,
    holding: Sequence[int] = (),
) -> list[Leased]:
    """Lease up to ``limit`` due deliveries (of ``channel``, or any) to ``worker``:
    (id, new status, attempts).

    A send becomes ``sending`` with its attempt count raised; a status poll keeps
    ``awaiting_confirmation`` and its count. The status is checked again on the row
    itself, so a delivery settled since the candidates were chosen is never taken.
    """
    key = (channel, conn.dialect.name)
    statement = _LEASE_STATEMENTS.get(key)
    if statement is None:
        statement = _LEASE_STATEMENTS[key] = _lease_statement(channel, conn.dialect.name)
    params = {
        "now": now,
        "claim_limit": limit,
        "lease_until": lease_until,
        "worker": worker,
        "holding": list(holding),
    }
    rows = (await conn.execute(statement, params)).all()
    return [
        Leased(
            r.id, DeliveryStatus(r.status), r.attempts, Channel(r.channel), r.address, r.campaign_id
        )
        for r in rows
    ]


async def open_attempts(
    conn: AsyncConnection,
    worker: str,
    sends: list[tuple[int, int, Channel]],
    now: dt.datetime,
    providers: Mapping[Channel, str] | None = None,
) -> None:
    """An attempt row for each (delivery id, attempt number, channel) about to be sent,
    with the provider ``providers`` names for its channel (the delivery records it too).

    An attempt still open on one of them was cut off by a lost lease: it ends ``unknown``.
    """
    if not sends:
        return
    rescued = [delivery_id for delivery_id, number, _ in sends if number > 1]
    if rescued:
        await close_cut_off(conn, rescued, now)
    providers = providers or {}
    if conn.dialect.name == "postgresql":
        # One statement (one round trip) for the attempt rows and the deliveries' provider.
        await conn.execute(_OPEN_ATTEMPTS_PG, opening_params(worker, sends, now, providers))
        return
    await conn.execute(
        insert(attempts),
        [
            {
                "delivery_id": delivery_id,
                "number": number,
                "worker": worker,
                "started_at": now,
                "provider": providers.get(channel),
            }
            for delivery_id, number, channel in sends
        ],
    )
    for channel, provider in providers.items():
        ids = [delivery_id for delivery_id, _, c in sends if c is channel]
        if ids:
            await conn.execute(
                update(deliveries).where(deliveries.c.id.in_(ids)).values(provider=provider)
            )


def opening_params(
    worker: str,
    sends: list[tuple[int, int, Channel]],
    now: dt.datetime,
    providers: Mapping[Channel, str],
) -> dict[str, Any]:
    """The binds of :func:`opening_pg`."""
    return {
        "open_ids": [delivery_id for delivery_id, _, _ in sends],
        "numbers": [number for _, number, _ in sends],
        "providers": [providers.get(channel) for _, _, channel in sends],
        "worker": worker,
        "now": now,
    }


def opening_pg() -> Update:
    """``WITH opened AS (INSERT INTO attempts … SELECT … FROM unnest(…) RETURNING …)
    UPDATE deliveries SET provider …``: binds ``open_ids``, ``numbers``, ``providers``
    (arrays, one entry per send), ``worker`` and ``now`` (see :func:`opening_params`)."""
    rows = (
        func.unnest(
            bindparam("open_ids", type_=ARRAY(Integer)),
            bindparam("numbers", type_=ARRAY(Integer)),
            bindparam("providers", type_=ARRAY(String)),
        )
        .table_valued(
            column("delivery_id", Integer), column("number", Integer), column("provider", String)
        )
        .render_derived(name="u")
    )
    opened = (
        insert(attempts)
        .from_select(
            ["delivery_id", "number", "worker", "started_at", "provider"],
            select(
                rows.c.delivery_id,
                rows.c.number,
                bindparam("worker", type_=String),
                bindparam("now", type_=UTCDateTime),
                rows.c.provider,
            ),
        )
        .returning(attempts.c.delivery_id, attempts.c.provider)
        .cte("opened")
    )
    return (
        update(deliveries)
        .where(deliveries.c.id == opened.c.delivery_id, opened.c.provider.is_not(None))
        .values(provider=opened.c.provider)
    )


_OPEN_ATTEMPTS_PG = opening_pg()


# What an attempt cut off by a lost lease ends with.
CUT_OFF: dict[str, str] = {
    "outcome": AttemptOutcome.UNKNOWN.value,
    "error_class": LEASE_EXPIRED,
    "error_message": "the worker stopped before recording an outcome; "
    "the provider may or may not have received it",
}


def cutting_off(ids: Any, now: Any, values: Mapping[str, Any] = CUT_OFF) -> Update:
    """Attempts still open on the deliveries ``ids`` lost their worker: they end
    ``unknown`` (as of ``now``), with ``values`` (:data:`CUT_OFF`, or binds of it)."""
    return (
        update(attempts)
        .where(attempts.c.delivery_id.in_(ids), attempts.c.outcome.is_(None))
        .values(finished_at=now, **values)
    )


async def close_cut_off(conn: AsyncConnection, ids: list[int], now: dt.datetime) -> None:
    """Attempts still open on these deliveries lost their worker: they end ``unknown``."""
    await conn.execute(cutting_off(ids, now))


# Past the deadline: waiting ones (queued, held for review, or waiting for the supporter's
# link), and ones whose sender died.
_WAITING = [
    s.value
    for s in (
        DeliveryStatus.QUEUED,
        DeliveryStatus.HELD,
        DeliveryStatus.AWAITING_SUPPORTER,
    )
]
_EXPIRABLE = [*_WAITING, DeliveryStatus.SENDING.value]


async def expire_overdue(conn: AsyncConnection, now: dt.datetime) -> None:
    d = deliveries
    await conn.execute(
        update(d)
        .where(
            d.c.status.in_(_EXPIRABLE),
            d.c.expires_at <= now,
            or_(
                d.c.status.in_(_WAITING),
                and_(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until < now),
            ),
        )
        .values(
            status=DeliveryStatus.EXPIRED.value,
            lease_until=None,
            lease_owner=None,
            updated_at=now,
            last_error_class="Expired",
            last_error_code=None,
            last_error_message=case(
                (
                    d.c.status == DeliveryStatus.AWAITING_SUPPORTER.value,
                    UNCONFIRMED_AT_DEADLINE,
                ),
                (
                    d.c.last_error_message.is_(None),
                    "the campaign deadline passed before it was sent",
                ),
                else_=literal("the campaign deadline passed before a retry; last error: ")
                + d.c.last_error_message,
            ),
        )
    )
