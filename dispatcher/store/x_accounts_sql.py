"""Supporters' X accounts, connected on a campaign page for the posts of one appeal, and
the hand-offs.

A connection is started with the authorisation's state (a hash) and the PKCE verifier
(sealed); once X gives the tokens they replace the verifier (sealed). The appeal the page
then sends is bound to it as it is stored, and its posts go out from that account. The
tokens go as soon as the appeal's X posts have settled (or its data is deleted); a
connection no appeal used goes after the connect wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import UNSETTLED_STATUSES, Channel, DeliveryStatus, utcnow
from dispatcher.store.base import StoreBase
from dispatcher.store.engine import upsert
from dispatcher.store.schema import deliveries, pacing, x_accounts

x = x_accounts


class XAccountStore(StoreBase):
    # The look at a key's limit under way, shared by whoever asks meanwhile.
    _spent_reads: dict[str, asyncio.Future[tuple[dt.datetime, str] | None]]

    async def begin_x_connect(
        self, id_hash: str, *, state_hash: str, sealed: str, now: dt.datetime | None = None
    ) -> None:
        """A new connection: its id and the authorisation's state (hashes), the verifier
        sealed."""
        now = now or utcnow()
        async with self._writing() as conn:
            await conn.execute(
                x.insert().values(
                    id_hash=id_hash,
                    state_hash=state_hash,
                    sealed=sealed,
                    created_at=now,
                    updated_at=now,
                )
            )

    async def x_connect_by_state(self, state_hash: str) -> tuple[str, str] | None:
        """The connection (id hash) and sealed verifier an authorisation's state is for;
        the state is used up."""
        async with self._writing() as conn:
            row = (
                await conn.execute(
                    select(x.c.id_hash, x.c.sealed).where(
                        x.c.state_hash == state_hash, x.c.appeal_id.is_(None)
                    )
                )
            ).first()
            if row is None:
                return None
            await conn.execute(update(x).where(x.c.id_hash == row.id_hash).values(state_hash=None))
        return str(row.id_hash), str(row.sealed)

    async def finish_x_connect(
        self, id_hash: str, sealed: str, now: dt.datetime | None = None
    ) -> None:
        """The supporter's tokens (sealed) replace the verifier."""
        async with self._writing() as conn:
            await conn.execute(
                update(x)
                .where(x.c.id_hash == id_hash)
                .values(sealed=sealed, updated_at=now or utcnow())
            )

    async def drop_x_connection(self, id_hash: str) -> None:
        async with self._writing() as conn:
            await conn.execute(delete(x).where(x.c.id_hash == id_hash, x.c.appeal_id.is_(None)))

    async def x_connection(self, id_hash: str) -> str | None:
        """A connection's sealed contents while no appeal has used it yet."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(x.c.sealed).where(x.c.id_hash == id_hash, x.c.appeal_id.is_(None))
            )
        return str(found) if found is not None else None

    async def x_sealed(self, appeal_id: str) -> str | None:
        """The sealed tokens an appeal's posts go out with (None: none, or gone)."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(x.c.sealed).where(x.c.appeal_id == appeal_id))
        return str(found) if found is not None else None

    async def save_x_sealed(
        self, appeal_id: str, sealed: str, now: dt.datetime | None = None
    ) -> None:
        """Keep refreshed tokens (X rotates the refresh token with each use)."""
        async with self._writing() as conn:
            await conn.execute(
                update(x)
                .where(x.c.appeal_id == appeal_id)
                .values(sealed=sealed, updated_at=now or utcnow())
            )

    async def open_hand_off(
        self, appeal_id: str, target_id: str, now: dt.datetime | None = None
    ) -> bool:
        """Record that the supporter opened a handed-off post (the first time counts);
        False when the appeal has no handed-off post to that target."""
        d = deliveries
        mine = and_(
            d.c.appeal_id == appeal_id,
            d.c.target_id == target_id,
            d.c.channel == Channel.TWITTER.value,
            d.c.status == DeliveryStatus.HANDED_OFF.value,
        )
        async with self._writing() as conn:
            opened = await conn.execute(
                update(d)
                .where(mine, d.c.handoff_opened_at.is_(None))
                .values(handoff_opened_at=now or utcnow())
            )
            return int(opened.rowcount) > 0

    async def hand_off_counts(self, campaign_id: str) -> tuple[dict[str, int], int]:
        """Handed-off posts per target, and how many of them their supporter opened."""
        d = deliveries
        handed = and_(d.c.campaign_id == campaign_id, d.c.status == DeliveryStatus.HANDED_OFF.value)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(d.c.target_id, func.count(), func.count(d.c.handoff_opened_at))
                    .where(handed)
                    .group_by(d.c.target_id)
                )
            ).all()
        return {r[0]: int(r[1]) for r in rows}, sum(int(r[2]) for r in rows)

    async def x_limit_seen(
        self, key: str, remaining: int, resets_at: dt.datetime, reason: str
    ) -> None:
        """What X said is left of ``key``'s limit (an account's, the app's) until when."""
        async with self._writing() as conn:
            statement = upsert(pacing, conn.dialect.name).values(
                key=key, remaining=remaining, resets_at=resets_at, reason=reason
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[pacing.c.key],
                    set_={
                        "remaining": statement.excluded.remaining,
                        "resets_at": statement.excluded.resets_at,
                        "reason": statement.excluded.reason,
                    },
                )
            )

    async def x_limit_take(
        self, key: str, now: dt.datetime | None = None
    ) -> tuple[dt.datetime, str] | None:
        """Take one post from ``key``'s limit: None when it may go (one was left, or X
        said nothing yet, or the limit has reset), else when it resets and why."""
        now = now or utcnow()
        live = and_(pacing.c.key == key, pacing.c.resets_at > now)
        async with self._writing() as conn:
            taken = await conn.execute(
                update(pacing)
                .where(live, pacing.c.remaining > 0)
                .values(remaining=pacing.c.remaining - 1)
            )
            if taken.rowcount:
                return None
            row = (
                await conn.execute(
                    select(pacing.c.resets_at, pacing.c.reason).where(live, pacing.c.remaining <= 0)
                )
            ).first()
        return (row.resets_at, str(row.reason or "")) if row is not None else None

    async def x_limit_spent(
        self, key: str, now: dt.datetime | None = None
    ) -> tuple[dt.datetime, str] | None:
        """Until when ``key``'s limit is used up, and why (None: it is not). Callers that
        ask while a look at the same key is under way share its answer (every appeal with
        an X post asks about the app's cap: one query for those that arrive together)."""
        if now is not None:
            return await self._limit_spent(key, now)
        shared = self._spent_reads.get(key)
        if shared is None or shared.done():
            shared = asyncio.ensure_future(self._limit_spent(key, utcnow()))
            self._spent_reads[key] = shared
        return await asyncio.shield(shared)

    async def _limit_spent(self, key: str, now: dt.datetime) -> tuple[dt.datetime, str] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(pacing.c.resets_at, pacing.c.reason).where(
                        pacing.c.key == key, pacing.c.resets_at > now, pacing.c.remaining <= 0
                    )
                )
            ).first()
        return (row.resets_at, str(row.reason or "")) if row is not None else None


async def bind_x_connection(conn: AsyncConnection, id_hash: str, appeal_id: str) -> bool:
    """Bind an unused connection to the appeal being stored; False if it is gone."""
    bound = await conn.execute(
        update(x).where(x.c.id_hash == id_hash, x.c.appeal_id.is_(None)).values(appeal_id=appeal_id)
    )
    return int(bound.rowcount) > 0


async def sweep_x_accounts(
    conn: AsyncConnection, now: dt.datetime, connect_wait: dt.timedelta
) -> None:
    """Tokens go once their appeal has no X post left unsettled, and connections no
    appeal used after ``connect_wait``."""
    d = deliveries
    unsettled = exists().where(
        d.c.appeal_id == x.c.appeal_id,
        d.c.channel == Channel.TWITTER.value,
        d.c.status.in_([s.value for s in UNSETTLED_STATUSES]),
    )
    await conn.execute(delete(x).where(x.c.appeal_id.is_not(None), ~unsettled))
    await conn.execute(
        delete(x).where(x.c.appeal_id.is_(None), x.c.created_at <= now - connect_wait)
    )
