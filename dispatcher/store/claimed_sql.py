"""Loading claimed deliveries: everything a worker needs to send each one, its letter with
the official's merge fields filled in."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Exists,
    Integer,
    ScalarSelect,
    Select,
    and_,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.merge_fields import merge
from dispatcher.models import AttemptOutcome, Channel, ClaimedDelivery, DeliveryStatus
from dispatcher.store.queue_sql import (
    LEASE_EXPIRED,
    close_cut_off,
    open_attempts,
    opening_params,
    opening_pg,
)
from dispatcher.store.schema import appeals, attempts, deliveries, supporters

_its_supporter = supporters.c.id == appeals.c.supporter_id


def _accepted_at(d: Any) -> ScalarSelect[Any]:
    """When the provider accepted the attempt a delivery is on (a fax awaiting its
    confirmation; the wait is bounded from then), else NULL."""
    accepted = attempts.alias("accepted")
    return (
        select(accepted.c.finished_at)
        .where(
            accepted.c.delivery_id == d.c.id,
            accepted.c.number == d.c.attempts,
            accepted.c.outcome == AttemptOutcome.ACCEPTED.value,
        )
        .scalar_subquery()
    )


def _earlier_unknown(d: Any) -> Exists:
    """Whether an earlier attempt of the delivery ``d`` may have gone out unseen."""
    earlier = attempts.alias("earlier")
    return exists().where(
        earlier.c.delivery_id == d.c.id,
        earlier.c.number < d.c.attempts,
        or_(
            earlier.c.outcome.is_(None),
            earlier.c.outcome == AttemptOutcome.UNKNOWN.value,
            # A worker that lost its lease and then reported that its send went out.
            and_(
                earlier.c.error_class == LEASE_EXPIRED,
                # Equalities, not IN (a list of literals): claim_one_sql runs it compiled once.
                or_(
                    earlier.c.outcome == AttemptOutcome.DELIVERED.value,
                    earlier.c.outcome == AttemptOutcome.ACCEPTED.value,
                ),
            ),
        ),
    )


def _refused_as_duplicate(d: Any) -> ScalarSelect[Any]:
    """How many earlier attempts of the delivery ``d`` X refused as a duplicate."""
    earlier = attempts.alias("earlier")
    return (
        select(func.count())
        .where(
            earlier.c.delivery_id == d.c.id,
            earlier.c.error_class == "DuplicateContent",
            earlier.c.outcome == AttemptOutcome.PERMANENT.value,
        )
        .scalar_subquery()
    )


def claimed_statement(dialect: str, source: Any = None) -> Select[Any]:
    """Everything a worker needs to send each delivery; binds ``ids`` (expanding; on
    PostgreSQL an array: one prepared statement for any number). With a ``source`` (rows
    with the deliveries' columns, as a claim's CTE returns them), each of its rows instead,
    and no ``ids``."""
    d, a = (deliveries if source is None else source), appeals
    statement = (
        select(
            d.c.id,
            d.c.appeal_id,
            d.c.campaign_id,
            d.c.target_id,
            d.c.target_name,
            d.c.target_fields,
            d.c.salutation,
            d.c.channel,
            d.c.address,
            d.c.status,
            d.c.attempts,
            d.c.provider_ref,
            d.c.expires_at,
            d.c.paused_attempts,
            a.c.supporter_name,
            a.c.supporter_country,
            a.c.language,
            a.c.subject,
            a.c.body,
            a.c.tweet,
            supporters.c.email.label("supporter_email"),
            a.c.confirmed_at.is_not(None).label("reply_to"),
            _earlier_unknown(d).label("earlier_outcome_unknown"),
            _refused_as_duplicate(d).label("duplicates_before"),
            _accepted_at(d).label("accepted_at"),
        )
        .select_from(d.join(a, a.c.id == d.c.appeal_id).join(supporters, _its_supporter))
        .order_by(d.c.id)
    )
    if source is not None:
        return statement
    ids = (
        d.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))
        if dialect == "postgresql"
        else d.c.id.in_(bindparam("ids", expanding=True))
    )
    return statement.where(ids)


_CLAIMED = {dialect: claimed_statement(dialect) for dialect in ("sqlite", "postgresql")}


def _open_and_load() -> Select[Any]:
    """PostgreSQL: the claimed deliveries' attempt rows opened (:func:`opening_pg`, as a
    CTE) and the deliveries loaded, in one statement. The load reads the rows as they were
    before the statement (the new attempt rows and providers are not among what it reads:
    the earlier attempts, the one a status poll is on, the letter)."""
    opening = opening_pg().returning(deliveries.c.id).cte("provided")
    return _CLAIMED["postgresql"].add_cte(opening)


_OPEN_AND_LOAD: Select[Any] | None = None


async def open_and_load(
    conn: AsyncConnection,
    worker: str,
    sends: list[tuple[int, int, Channel]],
    now: dt.datetime,
    providers: Mapping[Channel, str],
    ids: list[int],
) -> list[ClaimedDelivery]:
    """:func:`open_attempts` for ``sends`` and :func:`load_claimed` for ``ids``: one
    round trip on PostgreSQL (two or more elsewhere)."""
    if conn.dialect.name != "postgresql" or not sends:
        await open_attempts(conn, worker, sends, now, providers)
        return await load_claimed(conn, ids)
    rescued = [delivery_id for delivery_id, number, _ in sends if number > 1]
    if rescued:
        await close_cut_off(conn, rescued, now)
    global _OPEN_AND_LOAD
    if _OPEN_AND_LOAD is None:
        _OPEN_AND_LOAD = _open_and_load()
    params = opening_params(worker, sends, now, providers) | {"ids": ids}
    rows = (await conn.execute(_OPEN_AND_LOAD, params)).all()
    return [_claimed(r) for r in rows]


async def load_claimed(conn: AsyncConnection, ids: list[int]) -> list[ClaimedDelivery]:
    rows = (await conn.execute(_CLAIMED[conn.dialect.name], {"ids": ids})).all()
    return [_claimed(r) for r in rows]


def _claimed(r: Any) -> ClaimedDelivery:
    """A claimed row, its letter, subject and post with the official's merge fields filled
    in (dispatcher.merge_fields)."""
    fields = json.loads(r.target_fields) if r.target_fields else {}
    return ClaimedDelivery(
        id=r.id,
        appeal_id=r.appeal_id,
        campaign_id=r.campaign_id,
        target_id=r.target_id,
        target_name=r.target_name,
        salutation=r.salutation,
        channel=Channel(r.channel),
        address=r.address,
        status=DeliveryStatus(r.status),
        attempts=r.attempts,
        provider_ref=r.provider_ref,
        expires_at=r.expires_at,
        supporter_name=r.supporter_name,
        supporter_email=r.supporter_email,
        supporter_country=r.supporter_country,
        language=r.language,
        subject=merge(r.subject, fields),
        body=merge(r.body, fields),
        tweet=None if r.tweet is None else merge(r.tweet, fields),
        earlier_outcome_unknown=bool(r.earlier_outcome_unknown),
        paused_attempts=r.paused_attempts,
        duplicates_before=int(r.duplicates_before or 0),
        reply_to=bool(r.reply_to),
        accepted_at=r.accepted_at,
    )
