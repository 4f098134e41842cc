"""Removing supporters' personal data from a closed campaign, keeping every count.

Names, addresses, countries, letters, posts and idempotency keys go. Where a count needs
to tell supporters apart (one delivery per supporter, target and channel), the address
is replaced by a keyed hash that is the same for one supporter within one purge and
says nothing about the address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import UNSETTLED_STATUSES
from dispatcher.store.schema import (
    appeals,
    deliveries,
    reported_actions,
    supporters,
    x_accounts,
)

PURGED = "purged:"


@dataclass(frozen=True, slots=True)
class Purged:
    appeals: int  # appeals whose personal data was removed
    pending: int  # appeals kept as they are: a delivery is still pending
    supporters: int  # supporters with nothing left elsewhere, removed entirely
    reported: int  # self-reported actions stripped of a name or an address


def pseudonym(key: bytes, email_lc: str) -> str:
    digest = hmac.new(key, email_lc.encode(), hashlib.sha256).hexdigest()[:40]
    return f"{PURGED}{digest}"


async def purge_campaign(
    conn: AsyncConnection, campaign_id: str, *, created_before: dt.datetime, key: bytes
) -> Purged:
    a, d = appeals, deliveries
    pending = exists().where(
        d.c.appeal_id == a.c.id, d.c.status.in_([p.value for p in UNSETTLED_STATUSES])
    )
    chosen = and_(
        a.c.campaign_id == campaign_id, a.c.created_at < created_before, a.c.supporter_name != ""
    )
    ids = list((await conn.execute(select(a.c.id).where(chosen, ~pending))).scalars())
    held = int(await conn.scalar(select(func.count()).where(chosen, pending)) or 0)
    removed = await forget_appeals(conn, ids, key)
    reported = await conn.execute(
        update(reported_actions)
        .where(
            reported_actions.c.campaign_id == campaign_id,
            reported_actions.c.created_at < created_before,
            (reported_actions.c.supporter_name.is_not(None))
            | (reported_actions.c.supporter_email_lc.is_not(None)),
        )
        .values(supporter_name=None, supporter_email_lc=None)
    )
    return Purged(len(ids), held, removed, int(reported.rowcount))


async def forget_appeals(conn: AsyncConnection, ids: list[str], key: bytes) -> int:
    """The appeals' names, countries, letters, posts and keys go; their deliveries keep a
    pseudonym of the address under ``key`` (a supporter's own deletion uses the kept alias
    key, so they are still counted once; a purge, one it forgets). Returns the supporters
    left with nothing, now forgotten."""
    a, d = appeals, deliveries
    if ids:
        emails = await conn.scalars(
            select(d.c.supporter_email_lc)
            .where(d.c.appeal_id.in_(ids), ~d.c.supporter_email_lc.startswith(PURGED))
            .distinct()
        )
        for email_lc in list(emails):  # one statement per supporter, not per delivery
            await conn.execute(
                update(d)
                .where(d.c.appeal_id.in_(ids), d.c.supporter_email_lc == email_lc)
                .values(supporter_email_lc=pseudonym(key, email_lc))
            )
        # A connected X account's tokens go with the rest.
        await conn.execute(delete(x_accounts).where(x_accounts.c.appeal_id.in_(ids)))
        await conn.execute(
            update(a)
            .where(a.c.id.in_(ids))
            .values(
                supporter_name="",
                supporter_country=None,
                body="",
                tweet=None,
                idempotency_key=None,
                contact_ok=False,
            )
        )
    # The supporters' own rows need no stable alias (the deliveries keep the one that
    # tells supporters apart): a key of this call only, which no later alias can meet.
    return await _forget_supporters(conn, secrets.token_bytes(32))


async def _forget_supporters(conn: AsyncConnection, key: bytes) -> int:
    """Supporters whose every appeal is purged: their row keeps only a pseudonym."""
    a, s = appeals, supporters
    kept = exists().where(a.c.supporter_id == s.c.id, a.c.supporter_name != "")
    rows = (
        await conn.execute(
            select(s.c.id, s.c.email_lc).where(~kept, ~s.c.email_lc.startswith(PURGED))
        )
    ).all()
    for supporter_id, email_lc in rows:
        alias = pseudonym(key, email_lc)
        await conn.execute(
            update(s)
            .where(s.c.id == supporter_id)
            .values(email_lc=alias, email=alias, name="", country=None)
        )
    return len(rows)
