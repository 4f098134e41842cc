"""Fax hours at the claim: a fax is never handed to a worker while its line is closed.

The window is a rule of the campaign file, in the line's own time zone, which SQL cannot
weigh the same way on SQLite and PostgreSQL; so the claim leases what is due, and here,
in the same transaction and before pacing or any attempt, the faxes whose line is closed
go back to the queue, due at its next opening (as pacing returns sends "due when they
will be"): nothing is sent, no attempt is opened or counted. Every worker claims through
this, so whichever worker holds a fax, it goes only inside the window, and so does every
retry, rescue or operator's retry. The delivery log says why it waits (``FAX_HOURS``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.fax_hours import FAX_HOURS, FaxHours
from dispatcher.models import Channel, DeliveryStatus, format_time
from dispatcher.store.pacing_sql import Leased, put_back_unused
from dispatcher.store.schema import UTCDateTime, deliveries

# Each fax line's hours: (campaign id, fax number in E.164) → window.
FaxLines = Mapping[tuple[str, str], FaxHours]


def waiting_note(hours: FaxHours, opening: dt.datetime) -> str:
    """What the delivery log says about a fax held for its line's hours."""
    return (
        f"not sent: the fax line is called only {hours.window} ({hours.zone}); "
        f"due at its next opening, {format_time(opening)}"
    )


async def hold_for_fax_hours(
    conn: AsyncConnection, leased: Sequence[Leased], lines: FaxLines, now: dt.datetime
) -> list[Leased]:
    """Keep the leases fax hours allow and put the rest back in the queue, due at their
    line's next opening; returns the kept. Every other fax to that line in the same
    campaign that would fall due before the opening is moved to it too, so a night's
    queue costs one claim per line, not one per fax."""
    held: list[dict[str, Any]] = []
    kept: list[Leased] = []
    for lease in leased:
        hours = lines.get((lease.campaign_id, lease.address))
        sends = lease.channel is Channel.FAX and lease.status is DeliveryStatus.SENDING
        if hours is None or not sends or hours.is_open(now):
            kept.append(lease)
            continue
        opening = hours.next_opening(now)
        held.append(
            {
                "b_id": lease.id,
                "b_campaign": lease.campaign_id,
                "b_address": lease.address,
                "b_when": opening,
                "b_note": waiting_note(hours, opening),
            }
        )
    if held:
        await _requeue(conn, held)
    noted = [lease.id for lease in kept if lease.channel is Channel.FAX]
    if noted and lines:
        # A fax leaving now no longer waits: the log's note would say it does.
        d = deliveries
        await conn.execute(
            update(d)
            .where(d.c.id.in_(noted), d.c.last_error_class == FAX_HOURS)
            .values(last_error_class=None, last_error_code=None, last_error_message=None)
        )
    return kept


async def _requeue(conn: AsyncConnection, held: list[dict[str, Any]]) -> None:
    d = deliveries
    when = bindparam("b_when", type_=UTCDateTime)
    waiting = {
        "next_attempt_at": when,
        "last_error_class": FAX_HOURS,
        "last_error_code": None,
        "last_error_message": bindparam("b_note"),
    }
    # The claimed fax itself: back to the queue, its attempt not used.
    await conn.execute(
        update(d).where(d.c.id == bindparam("b_id")).values(**put_back_unused(), **waiting),
        held,
    )
    # The rest of the line's queue in that campaign, due before the opening.
    await conn.execute(
        update(d)
        .where(
            and_(
                d.c.campaign_id == bindparam("b_campaign"),
                d.c.channel == Channel.FAX.value,
                d.c.address == bindparam("b_address"),
                d.c.status == DeliveryStatus.QUEUED.value,
                d.c.next_attempt_at < when,
            )
        )
        .values(**waiting),
        [{k: v for k, v in row.items() if k != "b_id"} for row in held],
    )
