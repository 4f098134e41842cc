"""Statements for intake: supporter, appeal and deliveries in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

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
    email_lc = appeal.supporter_email.lower()
    if appeal.idempotency_key is not None:
        keyed = await _appeal_with_key(conn, appeal.campaign_id, appeal.idempotency_key)
        if keyed is not None:
            return keyed
    existing_rows = (
        await conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.appeal_id,
                deliveries.c.target_id,
                deliveries.c.channel,
                deliveries.c.status,
            ).where(
                deliveries.c.campaign_id == appeal.campaign_id,
                deliveries.c.supporter_email_lc == email_lc,
            )
        )
    ).all()
    have = {(r.target_id, r.channel): r for r in existing_rows}
    repeats = tuple(
        DeliverySummary(r.id, r.target_id, Channel(r.channel), DeliveryStatus(r.status))
        for w in wanted
        if (r := have.get((w.target_id, w.channel.value))) is not None
    )
    new = [w for w in wanted if (w.target_id, w.channel.value) not in have]
    if not new:
        first = have[(wanted[0].target_id, wanted[0].channel.value)]
        return AppealReceipt(appeal_id=first.appeal_id, created=(), already_counted=repeats)

    supporter_id = await upsert_supporter(conn, appeal, email_lc, now)
    appeal_id = secrets.token_urlsafe(16)
    await conn.execute(
        insert(appeals).values(
            id=appeal_id,
            campaign_id=appeal.campaign_id,
            supporter_id=supporter_id,
            supporter_name=appeal.supporter_name,
            supporter_country=appeal.supporter_country,
            language=appeal.language,
            subject=appeal.subject,
            body=appeal.body,
            own_message=appeal.own_message,
            tweet=appeal.tweet,
            created_at=now,
            idempotency_key=appeal.idempotency_key,
        )
    )
    rows = [
        {
            "appeal_id": appeal_id,
            "campaign_id": appeal.campaign_id,
            "supporter_email_lc": email_lc,
            "target_id": w.target_id,
            "target_name": w.target_name,
            "salutation": w.salutation,
            "channel": w.channel.value,
            "address": w.address,
            "status": DeliveryStatus.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": appeal.expires_at,
            "created_at": now,
            "updated_at": now,
        }
        for w in new
    ]
    await conn.execute(insert(deliveries), rows)
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
            DeliverySummary(r.id, r.target_id, Channel(r.channel), DeliveryStatus.QUEUED)
            for r in created
        ),
        already_counted=repeats,
    )


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
