"""Statements that write outcomes: many at once for a worker's group commit, or one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    Text,
    Update,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import AttemptOutcome, DeliveryStatus, DeliveryUpdate
from dispatcher.store.queue_sql import LEASE_EXPIRED
from dispatcher.store.schema import UTCDateTime, attempts, deliveries


def _delivery_statement(*guards: ColumnElement[bool]) -> Update:
    """UPDATE of one delivery (``b_id``) from :func:`outcome_params`, where ``guards``
    hold: the column rules every writer of an outcome shares."""
    d = deliveries
    keep_error = bindparam("b_keep_error", type_=Boolean)
    return (
        update(d)
        .where(d.c.id == bindparam("b_id", type_=Integer), *guards)
        .values(
            status=bindparam("b_status", type_=String),
            lease_until=None,
            lease_owner=None,
            updated_at=bindparam("b_now", type_=UTCDateTime),
            next_attempt_at=func.coalesce(
                bindparam("b_next", type_=UTCDateTime), d.c.next_attempt_at
            ),
            provider_ref=func.coalesce(bindparam("b_ref", type_=String), d.c.provider_ref),
            settlement=func.coalesce(bindparam("b_settlement", type_=String), d.c.settlement),
            paused_attempts=d.c.paused_attempts + bindparam("b_paused", type_=Integer),
            last_error_class=case(
                (keep_error, d.c.last_error_class), else_=bindparam("b_class", type_=String)
            ),
            last_error_code=case(
                (keep_error, d.c.last_error_code), else_=bindparam("b_code", type_=String)
            ),
            last_error_message=case(
                (keep_error, d.c.last_error_message), else_=bindparam("b_message", type_=Text)
            ),
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


def _record_attempt_statement() -> Update:
    """UPDATE for many outcomes at once (executemany): the attempt row each one closes."""
    cut_off = attempts.c.error_class == LEASE_EXPIRED
    return (
        update(attempts)
        .where(
            attempts.c.delivery_id == bindparam("b_id", type_=Integer),
            attempts.c.number == bindparam("b_attempt", type_=Integer),
        )
        .values(
            finished_at=bindparam("b_now", type_=UTCDateTime),
            outcome=bindparam("b_outcome", type_=String),
            # An attempt whose lease ran out (another worker took the delivery over) keeps
            # that mark, and says what its worker learned after all.
            error_class=case((cut_off, LEASE_EXPIRED), else_=bindparam("b_class", type_=String)),
            error_code=bindparam("b_code", type_=String),
            error_message=case(
                (
                    cut_off,
                    literal("its lease ran out before this outcome was recorded: ")
                    + bindparam("b_outcome", type_=String),
                ),
                else_=bindparam("b_message", type_=Text),
            ),
            provider_ref=bindparam("b_ref", type_=String),
            response_summary=bindparam("b_summary", type_=Text),
        )
    )


_RECORD_DELIVERY = _delivery_statement(
    deliveries.c.lease_owner == bindparam("b_worker", type_=String),
    deliveries.c.attempts == bindparam("b_attempt", type_=Integer),
)
_RECORD_ATTEMPT = _record_attempt_statement()


async def record_many(
    conn: AsyncConnection, worker: str, updates: Sequence[DeliveryUpdate], now: dt.datetime
) -> None:
    """Write outcomes that each name their attempt, two statements for the lot.

    A delivery ``worker`` no longer holds on that attempt is left alone; the attempt row
    is closed regardless (the worker did finish its attempt, and knows how it ended).
    """
    assert all(u.attempt is not None for u in updates)
    rows = [outcome_params(u, now, worker=worker) for u in updates]
    await conn.execute(_RECORD_DELIVERY, rows)
    closing = [row for row, u in zip(rows, updates, strict=True) if u.attempt_outcome]
    if closing:
        await conn.execute(_RECORD_ATTEMPT, closing)


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
    result = await conn.execute(_delivery_statement(*guards), params)
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
