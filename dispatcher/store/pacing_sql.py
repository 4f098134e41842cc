"""Pacing held in the database, shared by every worker and kept across restarts.

Rates use the generic cell rate algorithm: each key ("email:to:<address>",
"<channel>:account") keeps the theoretical arrival time (``tat``) of its next send. At
``rate`` per minute a send is allowed while ``tat - now`` is within the minute's
allowance, and moves ``tat`` on by ``60 / rate`` seconds; so a quiet key may take up to a
minute's worth at once, then one every ``60 / rate`` seconds. A claimed delivery that is
not allowed goes back to the queue, due when its key allows it (nothing was sent, no
attempt is used). A provider's 429 pauses its channel until the time it gave.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import Channel, DeliveryStatus, PacingRules
from dispatcher.store.engine import upsert
from dispatcher.store.schema import UTCDateTime, deliveries, pacing


class Leased(NamedTuple):
    """A delivery just leased by a claim: what pacing needs to know about it."""

    id: int
    status: DeliveryStatus
    attempts: int
    channel: Channel
    address: str
    campaign_id: str


def account_key(channel: Channel | str) -> str:
    return f"{Channel(channel).value}:account"


def recipient_key(address: str) -> str:
    return f"email:to:{address.lower()}"


def _keys(lease: Leased, rules: PacingRules) -> list[tuple[str, int]]:
    """The keys that pace this send, each with its rate per minute."""
    if lease.status is not DeliveryStatus.SENDING:
        return []  # a status poll sends nothing
    keys = []
    if lease.channel is Channel.EMAIL:
        rate = rules.recipient_rate(lease.campaign_id)
        if rate > 0:
            keys.append((recipient_key(lease.address), rate))
    rate = rules.account_rate(lease.campaign_id, lease.channel)
    if rate > 0:
        keys.append((account_key(lease.channel), rate))
    return keys


async def _lock_keys(conn: AsyncConnection, keys: set[str]) -> dict[str, dt.datetime | None]:
    """Each key's ``tat``, its row locked (PostgreSQL) until the claim commits."""
    await conn.execute(
        upsert(pacing, conn.dialect.name).on_conflict_do_nothing(index_elements=[pacing.c.key]),
        [{"key": key} for key in sorted(keys)],
    )
    query = select(pacing.c.key, pacing.c.tat).where(pacing.c.key.in_(keys))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.key: row.tat for row in await conn.execute(query)}


async def pace(
    conn: AsyncConnection, leased: Sequence[Leased], rules: PacingRules, now: dt.datetime
) -> list[Leased]:
    """Keep the leases pacing allows and put the rest back in the queue; returns the kept."""
    wanted = {lease.id: _keys(lease, rules) for lease in leased}
    keys = {key for pairs in wanted.values() for key, _ in pairs}
    if not keys:
        return list(leased)
    tat = await _lock_keys(conn, keys)
    kept: list[Leased] = []
    deferred: list[dict[str, Any]] = []
    waiting: Counter[str] = Counter()
    for lease in leased:
        pairs = wanted[lease.id]
        allowed_at = [
            (tat[key] or now) - dt.timedelta(seconds=60 - 60 / rate) for key, rate in pairs
        ]
        if all(when <= now for when in allowed_at):
            for key, rate in pairs:
                tat[key] = max(tat[key] or now, now) + dt.timedelta(seconds=60 / rate)
            kept.append(lease)
            continue
        # Spread those waiting on one key over its coming slots instead of one instant.
        key, rate = max(zip(pairs, allowed_at, strict=True), key=lambda p: p[1])[0]
        when = max(allowed_at) + dt.timedelta(seconds=waiting[key] * 60 / rate)
        waiting[key] += 1
        deferred.append({"b_id": lease.id, "b_when": when})
    await conn.execute(
        update(pacing)
        .where(pacing.c.key == bindparam("b_key"))
        .values(tat=bindparam("b_tat", type_=UTCDateTime)),
        [{"b_key": key, "b_tat": when} for key, when in tat.items() if key in keys],
    )
    if deferred:
        d = deliveries
        await conn.execute(
            update(d)
            .where(d.c.id == bindparam("b_id"))
            .values(
                **put_back_unused(),
                next_attempt_at=bindparam("b_when", type_=UTCDateTime),
            ),
            deferred,
        )
    return kept


async def pause_key(conn: AsyncConnection, key: str, until: dt.datetime, reason: str) -> None:
    """``key`` (an account: "<channel>:account", "twitter:user:<id>", "twitter:app") is
    paused until then, or later if it already was."""
    statement = upsert(pacing, conn.dialect.name).values(key=key, paused_until=until, reason=reason)
    later = case(
        (pacing.c.paused_until.is_(None), statement.excluded.paused_until),
        (
            pacing.c.paused_until < statement.excluded.paused_until,
            statement.excluded.paused_until,
        ),
        else_=pacing.c.paused_until,
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[pacing.c.key],
            set_={"paused_until": later, "reason": statement.excluded.reason},
        )
    )


async def pause_channels(
    conn: AsyncConnection, pauses: dict[Channel, tuple[dt.datetime, str]]
) -> None:
    """A provider asked us to wait: its channel pauses until then for every worker, and
    what is queued for it is due no earlier."""
    for channel, (until, reason) in pauses.items():
        await pause_key(conn, account_key(channel), until, reason)
        d = deliveries
        await conn.execute(
            update(d)
            .where(
                d.c.channel == channel.value,
                d.c.status == DeliveryStatus.QUEUED.value,
                d.c.next_attempt_at < until,
            )
            .values(next_attempt_at=until)
        )


def put_back_unused() -> dict[str, Any]:
    """The columns of a claimed delivery put back in the queue, its attempt not used (a
    rate or a closed fax line does not allow it yet)."""
    d = deliveries
    return {
        "status": DeliveryStatus.QUEUED.value,
        "attempts": d.c.attempts - 1,
        "lease_until": None,
        "lease_owner": None,
    }
