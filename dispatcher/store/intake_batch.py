"""Many appeals in one transaction, with a few statements for all of them.

The appeals of a batch are decided one after the other, in the order they arrived, exactly
as :func:`~dispatcher.store.intake_sql.insert_appeal` would decide them one transaction
each: what each supporter has already is read once for the whole batch, and what an
earlier appeal of the batch creates counts for the later ones. Then supporters, appeals,
deliveries and receipts are written with one statement each. An appeal with an
idempotency key or a connected X account (rare) is stored on its own, in the same
transaction, with what came before it written first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import (
    AppealReceipt,
    Channel,
    DeliveryStatus,
    DeliverySummary,
    NewAppeal,
    NewDelivery,
)
from dispatcher.store.engine import upsert
from dispatcher.store.intake_sql import (
    appeal_row,
    delivery_row,
    first_status,
    insert_appeal,
    notice_repeat,
)
from dispatcher.store.receipts import CONFIRM
from dispatcher.store.schema import appeals, deliveries, receipts, supporters, suppressed_addresses


@dataclass(frozen=True, slots=True)
class Submission:
    """One appeal handed to the store: what ``Store.create_appeal`` was given."""

    appeal: NewAppeal
    wanted: Sequence[NewDelivery]
    appeal_id: str
    providers: Mapping[Channel, str | None]
    now: dt.datetime | None = None


Pair = tuple[str, Channel]
# What a supporter has: a stored delivery (appeal id, summary), or one of this batch's
# (its submission's place, the pair), whose id is known once it is written.
Had = tuple[str, DeliverySummary] | tuple[int, Pair]


@dataclass
class _Plan:
    """What one appeal of the batch comes to."""

    suppressed: bool = False
    new: list[NewDelivery] = field(default_factory=list)
    repeats: list[Had] = field(default_factory=list)
    earlier: list[Had] = field(default_factory=list)  # repeats under the address: a notice


def _simple(s: Submission) -> bool:
    a = s.appeal
    return a.idempotency_key is None and a.x_connection is None and not a.x_account


async def insert_appeals(
    conn: AsyncConnection, batch: Sequence[Submission], now: dt.datetime
) -> list[AppealReceipt]:
    """Store every appeal of ``batch`` in ``conn``'s transaction; a receipt each, in order."""
    receipts_: list[AppealReceipt] = []
    start = 0
    while start < len(batch):
        end = start
        while end < len(batch) and _simple(batch[end]):
            end += 1
        if end > start:
            receipts_ += await _insert_simple(conn, batch[start:end], now)
            start = end
            continue
        s = batch[start]
        receipts_.append(
            await insert_appeal(
                conn, s.appeal, s.wanted, s.now or now, appeal_id=s.appeal_id, providers=s.providers
            )
        )
        start += 1
    return receipts_


async def _insert_simple(
    conn: AsyncConnection, batch: Sequence[Submission], now: dt.datetime
) -> list[AppealReceipt]:
    suppressed = await _suppressed(conn, {s.appeal.email_alias for s in batch} - {""})
    have = await _existing(conn, batch)
    plans: list[_Plan] = []
    for place, s in enumerate(batch):
        plan = _plan(s, suppressed, have)
        email_lc = s.appeal.supporter_email.lower()
        for w in plan.new:
            pair = (w.target_id, w.channel)
            have.setdefault((s.appeal.campaign_id, email_lc), {})[pair] = (place, pair)
        plans.append(plan)
    storing = [(s, p) for s, p in zip(batch, plans, strict=True) if p.new and not p.suppressed]
    created = await _write(conn, storing, now) if storing else {}
    for s, plan in zip(batch, plans, strict=True):
        if plan.earlier and not plan.new:
            appeal_ids = [_appeal_of(h, batch) for h in plan.earlier]
            await notice_repeat(conn, appeal_ids, s.now or now)
    return [_receipt(s, p, created, batch) for s, p in zip(batch, plans, strict=True)]


def _plan(
    s: Submission, suppressed: set[str], have: dict[tuple[str, str], dict[Pair, Had]]
) -> _Plan:
    appeal = s.appeal
    if appeal.email_alias and appeal.email_alias in suppressed:
        return _Plan(suppressed=True)
    email_lc = appeal.supporter_email.lower()
    mine = dict(have.get((appeal.campaign_id, email_lc), {}))
    if appeal.email_alias:
        mine.update(have.get((appeal.campaign_id, appeal.email_alias), {}))
    plan = _Plan()
    for w in s.wanted:
        pair = (w.target_id, w.channel)
        if pair in mine:
            plan.repeats.append(mine[pair])
        else:
            plan.new.append(w)
    if not plan.new:
        plan.earlier = list(plan.repeats)
    return plan


async def _suppressed(conn: AsyncConnection, aliases: set[str]) -> set[str]:
    if not aliases:
        return set()
    found = await conn.scalars(
        select(suppressed_addresses.c.alias).where(suppressed_addresses.c.alias.in_(aliases))
    )
    return set(found)


async def _existing(
    conn: AsyncConnection, batch: Sequence[Submission]
) -> dict[tuple[str, str], dict[Pair, Had]]:
    """(campaign, address or alias) → (target, channel) → the delivery stored for it."""
    d = deliveries
    campaigns = {s.appeal.campaign_id for s in batch}
    addresses = {s.appeal.supporter_email.lower() for s in batch}
    addresses |= {s.appeal.email_alias for s in batch if s.appeal.email_alias}
    rows = await conn.execute(
        select(
            d.c.id, d.c.appeal_id, d.c.campaign_id, d.c.supporter_email_lc, d.c.target_id,
            d.c.channel, d.c.status,
        ).where(d.c.campaign_id.in_(campaigns), d.c.supporter_email_lc.in_(addresses))
    )  # fmt: skip
    have: dict[tuple[str, str], dict[Pair, Had]] = {}
    for r in rows:
        channel = Channel(r.channel)
        summary = DeliverySummary(r.id, r.target_id, channel, DeliveryStatus(r.status))
        have.setdefault((r.campaign_id, r.supporter_email_lc), {})[(r.target_id, channel)] = (
            r.appeal_id,
            summary,
        )
    return have


async def _write(
    conn: AsyncConnection, storing: Sequence[tuple[Submission, _Plan]], now: dt.datetime
) -> dict[tuple[str, Pair], DeliverySummary]:
    """Supporters, appeals, deliveries and confirmation requests of ``storing``; the
    deliveries created, by (appeal id, pair)."""
    ids = await _supporter_ids(conn, [s for s, _ in storing], now)
    await conn.execute(
        insert(appeals),
        [
            appeal_row(s.appeal, s.appeal_id, ids[s.appeal.supporter_email.lower()], s.now or now)
            for s, _ in storing
        ],
    )
    rows = [
        delivery_row(
            s.appeal, s.appeal_id, s.appeal.supporter_email.lower(), w, s.now or now, s.providers
        )
        for s, plan in storing
        for w in plan.new
    ]
    d = deliveries
    # Plain executemany, then the ids read back: RETURNING in parameter order would make
    # SQLAlchemy insert one row a statement on SQLite.
    await conn.execute(insert(d), rows)
    made = await conn.execute(
        select(d.c.id, d.c.appeal_id, d.c.target_id, d.c.channel).where(
            d.c.appeal_id.in_([s.appeal_id for s, _ in storing])
        )
    )
    by_appeal = {s.appeal_id: s.appeal for s, _ in storing}
    created = {
        (r.appeal_id, (r.target_id, Channel(r.channel))): DeliverySummary(
            r.id, r.target_id, Channel(r.channel), first_status(by_appeal[r.appeal_id], r.channel)
        )
        for r in made
    }
    confirming = [
        {"appeal_id": s.appeal_id, "kind": CONFIRM, "delivery_id": 0, "status": "queued",
         "next_attempt_at": s.now or now, "created_at": s.now or now}
        for s, plan in storing
        if s.appeal.reply_to and any(w.channel is Channel.EMAIL for w in plan.new)
    ]  # fmt: skip
    if confirming:
        statement = upsert(receipts, conn.dialect.name).on_conflict_do_nothing()
        await conn.execute(statement, confirming)
    return created


async def _supporter_ids(
    conn: AsyncConnection, storing: Sequence[Submission], now: dt.datetime
) -> dict[str, int]:
    """Each address's supporter id; a supporter is created, as first given, when new."""
    wanted = {s.appeal.supporter_email.lower() for s in storing}
    found = await conn.execute(
        select(supporters.c.email_lc, supporters.c.id).where(supporters.c.email_lc.in_(wanted))
    )
    ids = {r.email_lc: int(r.id) for r in found}
    new: dict[str, Submission] = {}
    for s in storing:
        new.setdefault(s.appeal.supporter_email.lower(), s)
    rows = [
        {"email_lc": email_lc, "email": s.appeal.supporter_email, "name": s.appeal.supporter_name,
         "country": s.appeal.supporter_country, "created_at": s.now or now}
        for email_lc, s in new.items()
        if email_lc not in ids
    ]  # fmt: skip
    if rows:
        await conn.execute(insert(supporters), rows)
        made = await conn.execute(
            select(supporters.c.email_lc, supporters.c.id).where(
                supporters.c.email_lc.in_([r["email_lc"] for r in rows])
            )
        )
        ids |= {r.email_lc: int(r.id) for r in made}
    return ids


def _appeal_of(had: Had, batch: Sequence[Submission]) -> str:
    first = had[0]
    return batch[first].appeal_id if isinstance(first, int) else first


def _summary(
    had: Had, batch: Sequence[Submission], created: Mapping[tuple[str, Pair], DeliverySummary]
) -> DeliverySummary:
    first, second = had
    if isinstance(first, int):
        assert isinstance(second, tuple)
        return created[(batch[first].appeal_id, second)]
    assert isinstance(second, DeliverySummary)
    return second


def _receipt(
    s: Submission,
    plan: _Plan,
    created: Mapping[tuple[str, Pair], DeliverySummary],
    batch: Sequence[Submission],
) -> AppealReceipt:
    if plan.suppressed:
        return AppealReceipt(appeal_id=s.appeal_id, created=(), already_counted=(), suppressed=True)
    repeats = tuple(_summary(h, batch, created) for h in plan.repeats)
    mine = sorted(
        (created[(s.appeal_id, (w.target_id, w.channel))] for w in plan.new), key=lambda d: d.id
    )
    return AppealReceipt(appeal_id=s.appeal_id, created=tuple(mine), already_counted=repeats)
