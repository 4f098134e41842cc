"""Statements for intake: supporter, appeal and deliveries in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import (
    AppealReceipt,
    Channel,
    DeliveryStatus,
    DeliverySummary,
    NewAppeal,
    NewDelivery,
)
from dispatcher.store.schema import appeals, deliveries, supporters


async def insert_appeal(
    conn: AsyncConnection,
    appeal: NewAppeal,
    wanted: Sequence[NewDelivery],
    now: dt.datetime,
) -> AppealReceipt:
    """Supporter, appeal and the deliveries this supporter does not have yet in the campaign.

    When every wanted pair exists already (or the idempotency key was used before), nothing
    is written and the receipt names the earlier appeal.
    """
    email_lc = appeal.supporter_email.lower()
    if appeal.idempotency_key is not None:
        keyed = await _appeal_with_key(conn, appeal.campaign_id, appeal.idempotency_key)
        if keyed is not None:
            return keyed
    have = await _existing_pairs(conn, appeal.campaign_id, email_lc)
    repeats = tuple(have[key][1] for w in wanted if (key := (w.target_id, w.channel)) in have)
    new = [w for w in wanted if (w.target_id, w.channel) not in have]
    if not new:
        earlier_appeal = have[(wanted[0].target_id, wanted[0].channel)][0]
        return AppealReceipt(appeal_id=earlier_appeal, created=(), already_counted=repeats)
    supporter_id = await upsert_supporter(conn, appeal, email_lc, now)
    appeal_id = secrets.token_urlsafe(16)
    await conn.execute(insert(appeals).values(_appeal_row(appeal, appeal_id, supporter_id, now)))
    await conn.execute(
        insert(deliveries), [_delivery_row(appeal, appeal_id, email_lc, w, now) for w in new]
    )
    created = (
        await conn.execute(
            select(deliveries.c.id, deliveries.c.target_id, deliveries.c.channel)
            .where(deliveries.c.appeal_id == appeal_id)
            .order_by(deliveries.c.id)
        )
    ).all()
    return AppealReceipt(
        appeal_id=appeal_id,
        created=tuple(
            DeliverySummary(r.id, r.target_id, Channel(r.channel), _first_status(appeal))
            for r in created
        ),
        already_counted=repeats,
    )


async def _existing_pairs(
    conn: AsyncConnection, campaign_id: str, email_lc: str
) -> dict[tuple[str, Channel], tuple[str, DeliverySummary]]:
    """(target, channel) → (appeal id, delivery) for what this supporter already has."""
    d = deliveries
    rows = (
        await conn.execute(
            select(d.c.id, d.c.appeal_id, d.c.target_id, d.c.channel, d.c.status).where(
                d.c.campaign_id == campaign_id, d.c.supporter_email_lc == email_lc
            )
        )
    ).all()
    return {
        (r.target_id, Channel(r.channel)): (
            r.appeal_id,
            DeliverySummary(r.id, r.target_id, Channel(r.channel), DeliveryStatus(r.status)),
        )
        for r in rows
    }


def _appeal_row(
    appeal: NewAppeal, appeal_id: str, supporter_id: int, now: dt.datetime
) -> dict[str, Any]:
    return {
        "id": appeal_id,
        "campaign_id": appeal.campaign_id,
        "supporter_id": supporter_id,
        "supporter_name": appeal.supporter_name,
        "supporter_country": appeal.supporter_country,
        "language": appeal.language,
        "subject": appeal.subject,
        "body": appeal.body,
        "own_message": appeal.own_message,
        "tweet": appeal.tweet,
        "created_at": now,
        "idempotency_key": appeal.idempotency_key,
        "receipt": appeal.receipt,
        "contact_ok": appeal.contact_ok,
    }


def _first_status(appeal: NewAppeal) -> DeliveryStatus:
    return DeliveryStatus.HELD if appeal.held else DeliveryStatus.QUEUED


def _delivery_row(
    appeal: NewAppeal, appeal_id: str, email_lc: str, wanted: NewDelivery, now: dt.datetime
) -> dict[str, Any]:
    return {
        "appeal_id": appeal_id,
        "campaign_id": appeal.campaign_id,
        "supporter_email_lc": email_lc,
        "target_id": wanted.target_id,
        "target_name": wanted.target_name,
        "salutation": wanted.salutation,
        "channel": wanted.channel.value,
        "address": wanted.address,
        "status": _first_status(appeal).value,
        "attempts": 0,
        "next_attempt_at": now,
        "expires_at": appeal.expires_at,
        "created_at": now,
        "updated_at": now,
    }


async def upsert_supporter(
    conn: AsyncConnection, appeal: NewAppeal, email_lc: str, now: dt.datetime
) -> int:
    found = await conn.scalar(select(supporters.c.id).where(supporters.c.email_lc == email_lc))
    if found is not None:
        await conn.execute(
            update(supporters)
            .where(supporters.c.id == found)
            .values(name=appeal.supporter_name, country=appeal.supporter_country)
        )
        return int(found)
    result = await conn.execute(
        insert(supporters)
        .values(
            email_lc=email_lc,
            email=appeal.supporter_email,
            name=appeal.supporter_name,
            country=appeal.supporter_country,
            created_at=now,
        )
        .returning(supporters.c.id)
    )
    return int(result.scalar_one())


async def _appeal_with_key(
    conn: AsyncConnection, campaign_id: str, key: str
) -> AppealReceipt | None:
    """The appeal an earlier request with this idempotency key created, as a repeat."""
    appeal_id = await conn.scalar(
        select(appeals.c.id).where(
            appeals.c.campaign_id == campaign_id, appeals.c.idempotency_key == key
        )
    )
    if appeal_id is None:
        return None
    rows = (
        await conn.execute(
            select(
                deliveries.c.id, deliveries.c.target_id, deliveries.c.channel, deliveries.c.status
            )
            .where(deliveries.c.appeal_id == appeal_id)
            .order_by(deliveries.c.id)
        )
    ).all()
    return AppealReceipt(
        appeal_id=str(appeal_id),
        created=(),
        already_counted=tuple(
            DeliverySummary(r.id, r.target_id, Channel(r.channel), DeliveryStatus(r.status))
            for r in rows
        ),
    )
