"""Statements that write outcomes: many at once for a worker's group commit, or one.

A group commit on PostgreSQL writes its batch in one statement, the rows unnested from
arrays (``WITH closed AS (UPDATE attempts … FROM unnest(…)) UPDATE deliveries … FROM
unnest(…)``), not two statements per outcome: the same rules, one round trip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Text,
    Update,
    bindparam,
    case,
    column,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from dispatcher.models import AttemptOutcome, DeliveryStatus, DeliveryUpdate
from dispatcher.store.queue_sql import LEASE_EXPIRED
from dispatcher.store.schema import UTCDateTime, attempts, deliveries

# The per-outcome values of the statements, and their types: bound per row
# (executemany), or on PostgreSQL unnested from one array each (one statement a batch).
_PER_OUTCOME: dict[str, TypeEngine[Any]] = {
    "b_id": Integer(),
    "b_attempt": Integer(),
    "b_status": String(),
    "b_next": UTCDateTime(),
    "b_ref": String(),
    "b_settlement": String(),
    "b_paused": Integer(),
    "b_keep_error": Boolean(),
    "b_class": String(),
    "b_code": String(),
    "b_message": Text(),
    "b_outcome": String(),
    "b_summary": Text(),
}
_IN_ARRAYS = {**_PER_OUTCOME, "b_next": DateTime(timezone=True)}
Values = Mapping[str, ColumnElement[Any]]


def _bound() -> Values:
    """Each value a bind parameter of its own (one outcome, or executemany)."""
    return {name: bindparam(name, type_=kind) for name, kind in _PER_OUTCOME.items()}


def _unnested() -> Values:
    """Each value a column of ``unnest(:b_id, :b_attempt, …) AS u(…)``: PostgreSQL writes
    a whole batch in one statement (arrays from :func:`as_arrays`)."""
    arrays = [bindparam(name, type_=ARRAY(kind)) for name, kind in _IN_ARRAYS.items()]
    columns = [column(name, kind) for name, kind in _IN_ARRAYS.items()]
    rows = func.unnest(*arrays).table_valued(*columns).render_derived(name="u")
    return {name: rows.c[name] for name in _IN_ARRAYS}


def as_arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """:func:`outcome_params` rows as one array per value, for :func:`_unnested`."""
    return {name: [row[name] for row in rows] for name in _IN_ARRAYS}


def _delivery_statement(v: Values, *guards: ColumnElement[bool]) -> Update:
    """UPDATE of the delivery ``v["b_id"]`` from the values ``v`` (see :func:`_bound`),
    where ``guards`` hold: the column rules every writer of an outcome shares."""
    d = deliveries
    keep_error = v["b_keep_error"]
    return (
        update(d)
        .where(d.c.id == v["b_id"], *guards)
        .values(
            status=v["b_status"],
            lease_until=None,
            lease_owner=None,
            updated_at=bindparam("b_now", type_=UTCDateTime),
            next_attempt_at=func.coalesce(v["b_next"], d.c.next_attempt_at),
            provider_ref=func.coalesce(v["b_ref"], d.c.provider_ref),
            settlement=func.coalesce(v["b_settlement"], d.c.settlement),
            paused_attempts=d.c.paused_attempts + v["b_paused"],
            last_error_class=case((keep_error, d.c.last_error_class), else_=v["b_class"]),
            last_error_code=case((keep_error, d.c.last_error_code), else_=v["b_code"]),
            last_error_message=case((keep_error, d.c.last_error_message), else_=v["b_message"]),
        )
    )


def outcome_params(
    u: DeliveryUpdate, now: dt.datetime, *, worker: str | None = None, count_pause: bool = True
) -> dict[str, Any]:
    """The parameters of one outcome's statements (the delivery's and its attempt's)."""
    error = u.error
    return {
        "b_id": u.delivery_id,
        "b_worker": worker,
        "b_attempt": u.attempt,
        "b_status": u.status.value,
        "b_now": now,
        "b_next": u.next_attempt_at,
        "b_ref": u.provider_ref,
        "b_settlement": u.settlement.value if u.settlement else None,
        # Neither a rate limit nor a send the worker held back counts to the cap.
        "b_paused": int(
            count_pause
            and (
                u.pause_until is not None
                or u.attempt_outcome in (AttemptOutcome.NOT_SENT, AttemptOutcome.RATE_LIMITED)
            )
        ),
        # An error replaces the last one; delivery clears it; anything else keeps it.
        "b_keep_error": error is None and u.status is not DeliveryStatus.DELIVERED,
        "b_class": error.error_class if error else None,
        "b_code": error.code if error else None,
        "b_message": error.message if error else None,
        "b_outcome": u.attempt_outcome.value if u.attempt_outcome else None,
        "b_summary": u.response_summary,
    }


def _record_attempt_statement(v: Values) -> Update:
    """UPDATE of the attempt row each outcome (values ``v``) closes."""
    cut_off = attempts.c.error_class == LEASE_EXPIRED
    return (
        update(attempts)
        .where(attempts.c.delivery_id == v["b_id"], attempts.c.number == v["b_attempt"])
        .values(
            finished_at=bindparam("b_now", type_=UTCDateTime),
            outcome=v["b_outcome"],
            # An attempt whose lease ran out (another worker took the delivery over) keeps
            # that mark, and says what its worker learned after all.
            error_class=case((cut_off, LEASE_EXPIRED), else_=v["b_class"]),
            error_code=v["b_code"],
            error_message=case(
                (
                    cut_off,
                    literal("its lease ran out before this outcome was recorded: ")
                    + v["b_outcome"],
                ),
                else_=v["b_message"],
            ),
            provider_ref=v["b_ref"],
            response_summary=v["b_summary"],
        )
    )


def _record_statements(v: Values) -> tuple[Update, Update]:
    """A worker's outcomes: its delivery, if still this worker's on that attempt, and the
    attempt row it closes."""
    owned = [
        deliveries.c.lease_owner == bindparam("b_worker", type_=String),
        deliveries.c.attempts == v["b_attempt"],
    ]
    return _delivery_statement(v, *owned), _record_attempt_statement(v)


def _record_in_one() -> Update:
    """PostgreSQL: both of :func:`_record_statements` in one statement (one round trip),
    the attempts' as a CTE; each unnests the arrays of :func:`as_arrays`."""
    closing = _unnested()
    closed = (
        _record_attempt_statement(closing)
        .where(closing["b_outcome"].is_not(None))  # a status poll closes no attempt
        .returning(attempts.c.id)
        .cte("closed")
    )
    record_delivery, _ = _record_statements(_unnested())
    return record_delivery.add_cte(closed)


_RECORD = _record_statements(_bound())
_RECORD_IN_ONE = _record_in_one()


async def record_many(
    conn: AsyncConnection, worker: str, updates: Sequence[DeliveryUpdate], now: dt.datetime
) -> None:
    """Write outcomes that each name their attempt: one statement for the lot on
    PostgreSQL, two executemany on SQLite.

    A delivery ``worker`` no longer holds on that attempt is left alone; the attempt row
    is closed regardless (the worker did finish its attempt, and knows how it ended).
    """
    assert all(u.attempt is not None for u in updates)
    rows = [outcome_params(u, now, worker=worker) for u in updates]
    if conn.dialect.name == "postgresql":
        # One statement for the batch, its rows unnested from arrays.
        await conn.execute(_RECORD_IN_ONE, as_arrays(rows) | {"b_now": now, "b_worker": worker})
        return
    record_delivery, record_attempt = _RECORD
    await conn.execute(record_delivery, rows)
    closing = [row for row, u in zip(rows, updates, strict=True) if u.attempt_outcome]
    if closing:
        await conn.execute(record_attempt, closing)


async def apply_update(
    conn: AsyncConnection,
    u: DeliveryUpdate,
    condition: ColumnElement[bool],
    now: dt.datetime,
    *,
    close_attempt_regardless: bool = False,
) -> int:
    """Write one outcome to its delivery if ``condition`` holds, and close its attempt row.

    The attempt row is closed only when the delivery changed, unless
    ``close_attempt_regardless`` (a worker that lost its lease still finished its attempt).
    Returns 1 if the delivery changed, else 0.
    """
    d = deliveries
    params = outcome_params(u, now, count_pause=False)
    guards = [condition] if u.attempt is None else [condition, d.c.attempts == u.attempt]
    result = await conn.execute(_delivery_statement(_bound(), *guards), params)
    changed = int(result.rowcount)
    if u.attempt_outcome is not None and (changed or close_attempt_regardless):
        number: Any = u.attempt
        if number is None:
            number = select(d.c.attempts).where(d.c.id == u.delivery_id).scalar_subquery()
        await conn.execute(
            update(attempts)
            .where(
                attempts.c.delivery_id == u.delivery_id,
                attempts.c.number == number,
            )
            .values(
                finished_at=now,
                outcome=params["b_outcome"],
                error_class=params["b_class"],
                error_code=params["b_code"],
                error_message=params["b_message"],
                provider_ref=params["b_ref"],
                response_summary=params["b_summary"],
            )
        )
    return changed
