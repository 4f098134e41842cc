"""A claim in one statement, on PostgreSQL, for a channel that neither pacing nor fax
lines can hold back: the leases, the attempt rows (and the end of any a lost lease left
open), the provider, and the load of everything the worker needs, as CTEs before one
SELECT. Run outside a transaction (one statement is atomic by itself), it is one round
trip where the general claim takes four (BEGIN, lease, open and load, COMMIT).

The SELECT reads the leased rows as the lease's RETURNING gives them, and the earlier
attempts as they were before the statement: the ones it closes as cut off still read as
open (both mean "outcome unknown"), the ones it opens are not among the earlier.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Select, String, bindparam, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import Channel, ClaimedDelivery, DeliveryStatus, PacingRules
from dispatcher.store.claimed_sql import _claimed, claimed_statement
from dispatcher.store.queue_sql import CUT_OFF, cutting_off, leasing
from dispatcher.store.schema import UTCDateTime, attempts, deliveries

# The deliveries' columns the load reads (claimed_sql.claimed_statement).
_LOADED = (
    "id",
    "appeal_id",
    "campaign_id",
    "target_id",
    "target_name",
    "target_fields",
    "salutation",
    "channel",
    "address",
    "status",
    "attempts",
    "provider_ref",
    "expires_at",
    "paused_attempts",
)
SENDING = DeliveryStatus.SENDING.value


def never_held_back(channel: Channel | None, pacing: PacingRules | None) -> bool:
    """Whether no claim of ``channel`` can be held back: not fax (one fax a line, its
    hours), and no pacing rule for it, in the settings or any campaign."""
    if channel is None or channel is Channel.FAX:
        return False
    if pacing is None:
        return True
    own = list(pacing.campaigns.values())
    if channel is Channel.EMAIL and (
        pacing.per_recipient > 0 or any((c.email_per_recipient_per_minute or 0) > 0 for c in own)
    ):
        return False
    return pacing.per_account.get(channel, 0) <= 0 and not any(
        (c.per_account.get(channel) or 0) > 0 for c in own
    )


# Constants inside the CTEs, bound by name.
CONSTANTS: dict[str, Any] = {
    "one_sending": SENDING,
    "one_first": 1,
    **{f"one_{name}": value for name, value in CUT_OFF.items()},
}


def _claim_statement(channel: Channel) -> Select[Any]:
    """Binds what :func:`queue_sql.leasing` binds, ``provider`` (or NULL), and
    :data:`CONSTANTS`."""
    d = deliveries
    provider = bindparam("provider", type_=String)
    now = bindparam("now", type_=UTCDateTime)
    sending = bindparam("one_sending", type_=String)
    polling = d.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value
    leased = (
        leasing(channel, "postgresql")
        .values(provider=case((polling, d.c.provider), else_=func.coalesce(provider, d.c.provider)))
        .returning(*(d.c[name] for name in _LOADED))
        .cte("leased")
    )
    rescued = select(leased.c.id).where(
        leased.c.status == sending, leased.c.attempts > bindparam("one_first", type_=Integer)
    )
    constants = {name: bindparam(f"one_{name}", type_=String) for name in CUT_OFF}
    cut_off = cutting_off(rescued, now, constants).returning(attempts.c.id).cte("cut_off")
    opened = (
        insert(attempts)
        .from_select(
            ["delivery_id", "number", "worker", "started_at", "provider"],
            select(
                leased.c.id, leased.c.attempts, bindparam("worker", type_=String), now, provider
            ).where(leased.c.status == sending),
        )
        .returning(attempts.c.id)
        .cte("opened")
    )
    return claimed_statement("postgresql", source=leased).add_cte(cut_off, opened)


# Compiled once per channel and run as the driver's SQL: SQLAlchemy's statement cache
# mismatches the anonymous values inside DML CTEs added with add_cte (a value goes
# missing), and compiling this statement afresh takes milliseconds.
_COMPILED: dict[Channel, tuple[str, tuple[str, ...], Any]] = {}


async def claim_in_one(
    conn: AsyncConnection, channel: Channel, params: dict[str, Any]
) -> list[ClaimedDelivery]:
    """The deliveries of ``channel`` leased, their attempts opened, loaded (``params``:
    ``now``, ``claim_limit``, ``holding``, ``lease_until``, ``worker``, ``provider``)."""
    found = _COMPILED.get(channel)
    if found is None:
        compiled = _claim_statement(channel).compile(dialect=conn.dialect)
        found = _COMPILED[channel] = (str(compiled), tuple(compiled.positiontup or ()), compiled)
    sql, names, compiled = found
    values = compiled.construct_params(params | CONSTANTS)
    rows = (await conn.exec_driver_sql(sql, tuple(values[name] for name in names))).all()
    return [_claimed(r) for r in rows]
