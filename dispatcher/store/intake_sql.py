"""Statements for intake: supporter, appeal and deliveries in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.models import (
    HAND_OFF,
    AppealReceipt,
    Channel,
    DeliveryStatus,
    DeliverySummary,
    NewAppeal,
    NewDelivery,
    XRoute,
)
from dispatcher.store.engine import upsert
from dispatcher.store.receipts import CONFIRM, REPEAT
from dispatcher.store.schema import (
    appeals,
    deliveries,
    receipts,
    supporters,
    suppressed_addresses,
)
from dispatcher.store.x_accounts_sql import bind_x_connection


async def insert_appeal(
    conn: AsyncConnection,
    appeal: NewAppeal,
    wanted: Sequence[NewDelivery],
    now: dt.datetime,
    *,
    appeal_id: str,
    providers: Mapping[Channel, str | None],
) -> AppealReceipt:
    """Supporter, appeal and the deliveries this supporter does not have yet in the campaign,
    under ``appeal_id``.

    An address that is suppressed ("this wasn't me") stores nothing. When every wanted
    pair exists already, nothing is stored either and the earlier appeal gets a notice for
    its supporter (once): the receipt's ``appeal_id`` is still ``appeal_id``, so whoever
    sent it learns nothing of the earlier appeal. Only the idempotency key that created an
    appeal brings that appeal back.
    """
    email_lc = appeal.supporter_email.lower()
    if appeal.idempotency_key is not None:
        keyed = await _appeal_with_key(conn, appeal.campaign_id, appeal.idempotency_key)
        if keyed is not None:
            return keyed
    if appeal.email_alias and await _suppressed(conn, appeal.email_alias):
        return AppealReceipt(appeal_id=appeal_id, created=(), already_counted=(), suppressed=True)
    have, by_address = await _already_have(conn, appeal, email_lc)
    repeats = tuple(have[key][1] for w in wanted if (key := (w.target_id, w.channel)) in have)
    new = [w for w in wanted if (w.target_id, w.channel) not in have]
    if not new:
        earlier = [
            by_address[key][0] for w in wanted if (key := (w.target_id, w.channel)) in by_address
        ]
        await notice_repeat(conn, earlier, now)
        return AppealReceipt(appeal_id=appeal_id, created=(), already_counted=repeats)
    supporter_id = await upsert_supporter(conn, appeal, email_lc, now)
    await conn.execute(insert(appeals).values(appeal_row(appeal, appeal_id, supporter_id, now)))
    appeal = await _bound(conn, appeal, appeal_id)
    await conn.execute(
        insert(deliveries),
        [
            delivery_row(appeal, appeal_id, _identity(appeal, w, email_lc), w, now, providers)
            for w in new
        ],
    )
    created = (
        await conn.execute(
            select(deliveries.c.id, deliveries.c.target_id, deliveries.c.channel)
            .where(deliveries.c.appeal_id == appeal_id)
            .order_by(deliveries.c.id)
        )
    ).all()
    summaries = tuple(
        DeliverySummary(r.id, r.target_id, Channel(r.channel), first_status(appeal, r.channel))
        for r in created
    )
    if appeal.reply_to and any(d.channel is Channel.EMAIL for d in summaries):
        await _queue_message(conn, appeal_id, CONFIRM, now)
    return AppealReceipt(appeal_id=appeal_id, created=summaries, already_counted=repeats)


async def _bound(conn: AsyncConnection, appeal: NewAppeal, appeal_id: str) -> NewAppeal:
    """The appeal with its X account connection bound to it; its posts handed off if the
    connection ran out between the page and now."""
    if appeal.x_connection is None or await bind_x_connection(conn, appeal.x_connection, appeal_id):
        return appeal
    return replace(appeal, x_route=XRoute.HAND_OFF, x_note=CONNECTION_GONE)


Had = dict[tuple[str, Channel], tuple[str, DeliverySummary]]


async def _already_have(conn: AsyncConnection, appeal: NewAppeal, email_lc: str) -> tuple[Had, Had]:
    """What this supporter has already, (target, channel) → (appeal id, delivery): all of
    it, and the part under the address (whose supporter is told of a repeat). Posts from
    an account connected on the page are told apart by that account."""
    have = await _existing_pairs(conn, appeal.campaign_id, email_lc, appeal.email_alias)
    if not appeal.x_account:
        return have, have
    by_address = {pair: had for pair, had in have.items() if pair[1] is not Channel.TWITTER}
    by_account = await _existing_pairs(conn, appeal.campaign_id, *appeal.x_account)
    return {**by_address, **by_account}, by_address


def _identity(appeal: NewAppeal, wanted: NewDelivery, email_lc: str) -> str:
    """Who a delivery is counted once for: the address, or for a post from an account
    connected on the page, that account."""
    if appeal.x_account and wanted.channel is Channel.TWITTER:
        return appeal.x_account[0]
    return email_lc


async def _suppressed(conn: AsyncConnection, alias: str) -> bool:
    found = await conn.scalar(
        select(suppressed_addresses.c.alias).where(suppressed_addresses.c.alias == alias)
    )
    return found is not None


async def notice_repeat(conn: AsyncConnection, earlier: Sequence[str], now: dt.datetime) -> None:
    """Tell the earlier appeal's supporter, at their address, that it was sent again (one
    notice per earlier appeal, and none once its supporter deleted their data)."""
    found = await conn.scalar(
        select(appeals.c.id)
        .where(appeals.c.id.in_(set(earlier)), appeals.c.supporter_name != "")
        .order_by(appeals.c.created_at)
        .limit(1)
    )
    if found is not None:
        await _queue_message(conn, str(found), REPEAT, now)


async def _queue_message(
    conn: AsyncConnection, appeal_id: str, kind: str, now: dt.datetime
) -> None:
    statement = upsert(receipts, conn.dialect.name).values(
        appeal_id=appeal_id,
        kind=kind,
        delivery_id=0,
        status="queued",
        next_attempt_at=now,
        created_at=now,
    )
    await conn.execute(statement.on_conflict_do_nothing())


async def _existing_pairs(
    conn: AsyncConnection, campaign_id: str, email_lc: str, alias: str
) -> dict[tuple[str, Channel], tuple[str, DeliverySummary]]:
    """(target, channel) → (appeal id, delivery) for what this supporter already has (under
    their address, or its alias once they deleted their data)."""
    d = deliveries
    addresses = [email_lc, alias] if alias else [email_lc]
    rows = (
        await conn.execute(
            select(d.c.id, d.c.appeal_id, d.c.target_id, d.c.channel, d.c.status).where(
                d.c.campaign_id == campaign_id, d.c.supporter_email_lc.in_(addresses)
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


def appeal_row(
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
        "reply_to": appeal.reply_to,
        "page_language": appeal.page_language,
        **appeal.sources.values(),
    }


# The error class a handed-off delivery's reason is filed under (the log shows both).
HAND_OFF_CLASS = "HandOff"
CONNECTION_GONE = "the supporter's X account connection had expired when the appeal arrived"


def first_status(appeal: NewAppeal, channel: str) -> DeliveryStatus:
    """Held for review; an email that would carry the supporter's address waits for them to
    confirm it; everything else is queued."""
    if appeal.held:
        return DeliveryStatus.HELD
    if appeal.reply_to and channel == Channel.EMAIL.value:
        return DeliveryStatus.AWAITING_SUPPORTER
    if channel == Channel.TWITTER.value and appeal.x_route is XRoute.HAND_OFF:
        return DeliveryStatus.HANDED_OFF
    return DeliveryStatus.QUEUED


def delivery_row(
    appeal: NewAppeal,
    appeal_id: str,
    email_lc: str,
    wanted: NewDelivery,
    now: dt.datetime,
    providers: Mapping[Channel, str | None],
) -> dict[str, Any]:
    handed_off = wanted.channel is Channel.TWITTER and appeal.x_route is XRoute.HAND_OFF
    return {
        "last_error_class": HAND_OFF_CLASS if handed_off else None,
        "last_error_message": appeal.x_note if handed_off else None,
        "appeal_id": appeal_id,
        "campaign_id": appeal.campaign_id,
        "supporter_email_lc": email_lc,
        "target_id": wanted.target_id,
        "target_name": wanted.target_name,
        "target_fields": json.dumps(dict(wanted.target_fields), ensure_ascii=False),
        "salutation": wanted.salutation,
        "channel": wanted.channel.value,
        "address": wanted.address,
        "provider": HAND_OFF if handed_off else providers.get(wanted.channel),
        "status": first_status(appeal, wanted.channel.value).value,
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
        # Kept as first given: whoever types an address must not rename its owner.
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
