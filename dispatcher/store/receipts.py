"""Messages to supporters: the receipt once an appeal's deliveries have settled, and a
notice for a delivery that failed for good while others are still on their way; and
forgetting one appeal's personal data on the supporter's request.

A scan queues what is due from the deliveries changed since the last one (any worker may
run it: a unique key makes each message queued once); a claim leases queued messages
like deliveries, so two workers never send the same one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, exists, literal, select, update

from dispatcher.models import UNSETTLED_STATUSES, DeliveryStatus, QueueEvent, utcnow
from dispatcher.store.base import StoreBase
from dispatcher.store.engine import upsert
from dispatcher.store.purge_sql import forget_appeals
from dispatcher.store.schema import (
    appeals,
    deliveries,
    receipts,
    supporters,
    suppressed_addresses,
)

RECEIPT, FAILURE = "receipt", "failure"
# Queued at intake, whatever the receipt box said: the link that confirms officials may
# reply to the supporter, and a notice that an appeal they had sent was sent again with
# their address (once per earlier appeal).
CONFIRM, REPEAT = "confirm", "repeat"
_PENDING = [s.value for s in UNSETTLED_STATUSES]
# What "this wasn't me" can still stop: nothing of it has gone to a provider.
_NOT_GONE = [
    s.value
    for s in (
        DeliveryStatus.QUEUED,
        DeliveryStatus.HELD,
        DeliveryStatus.AWAITING_SUPPORTER,
    )
]
DISOWNED = "Disowned"


@dataclass(frozen=True, slots=True)
class ReceiptJob:
    id: int
    appeal_id: str
    kind: str  # "receipt", or "failure" for a notice about ``delivery_id``
    delivery_id: int
    attempts: int


@dataclass(frozen=True, slots=True)
class ReceiptAppeal:
    """What a receipt is written from (the deliveries come from the delivery log)."""

    appeal_id: str
    campaign_id: str
    supporter_name: str
    supporter_country: str | None
    supporter_email: str
    language: str  # the letter's
    page_language: str  # the pages' the supporter used (the letter's if not known)
    subject: str
    body: str
    tweet: str | None
    created_at: dt.datetime
    # The supporter followed a link we sent to the address (see confirm_reply_to): only
    # then may a message carry what was written with it.
    confirmed: bool


class ReceiptStore(StoreBase):
    async def queue_receipts(self, *, since: dt.datetime, now: dt.datetime | None = None) -> None:
        """Queue the receipts and failure notices that deliveries changed since ``since``
        call for (appeals that asked for a receipt only; each message once)."""
        now = now or utcnow()
        a, d, r = appeals, deliveries, receipts
        pending = exists().where(d.c.appeal_id == a.c.id, d.c.status.in_(_PENDING))
        touched = select(d.c.appeal_id).where(d.c.updated_at >= since)
        sent = exists().where(r.c.appeal_id == a.c.id, r.c.kind == RECEIPT)
        settled = select(a.c.id, literal(RECEIPT), literal(0)).where(
            a.c.receipt, a.c.id.in_(touched), ~pending, ~sent
        )
        f = deliveries.alias("f")
        noticed = exists().where(r.c.delivery_id == f.c.id, r.c.kind == FAILURE)
        still_pending = exists().where(d.c.appeal_id == f.c.appeal_id, d.c.status.in_(_PENDING))
        failed = (
            select(f.c.appeal_id, literal(FAILURE), f.c.id)
            .join(a, a.c.id == f.c.appeal_id)
            .where(
                a.c.receipt,
                f.c.status == DeliveryStatus.FAILED.value,
                f.c.updated_at >= since,
                still_pending,
                ~noticed,
            )
        )
        columns = ["appeal_id", "kind", "delivery_id"]
        stamps = {"status": "queued", "next_attempt_at": now, "created_at": now}
        # Read first: most rounds find nothing, and need not take the write lock for it.
        async with self.engine.connect() as conn:
            found = [*(await conn.execute(settled)).all(), *(await conn.execute(failed)).all()]
        if not found:
            return
        async with self._writing() as conn:
            for row in found:  # one by one: another worker may have queued it meanwhile
                statement = upsert(r, conn.dialect.name).values(
                    **dict(zip(columns, row, strict=True)), **stamps
                )
                await conn.execute(statement.on_conflict_do_nothing())

    async def claim_receipts(
        self, *, limit: int, lease_seconds: float, now: dt.datetime | None = None
    ) -> list[ReceiptJob]:
        now = now or utcnow()
        r = receipts
        due = (
            select(r.c.id)
            .where(
                r.c.status == "queued",
                r.c.next_attempt_at <= now,
                (r.c.leased_until.is_(None)) | (r.c.leased_until < now),
            )
            .order_by(r.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:  # read first: usually nothing is due
            if await conn.scalar(due.limit(1)) is None:
                return []
        async with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = await conn.execute(
                update(r)
                .where(r.c.id.in_(due.scalar_subquery()))
                .values(
                    leased_until=now + dt.timedelta(seconds=lease_seconds),
                    attempts=r.c.attempts + 1,
                )
                .returning(r.c.id, r.c.appeal_id, r.c.kind, r.c.delivery_id, r.c.attempts)
            )
            return [ReceiptJob(*row) for row in rows]

    async def receipt_appeal(self, appeal_id: str) -> ReceiptAppeal | None:
        a, s = appeals, supporters
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        a.c.id,
                        a.c.campaign_id,
                        a.c.supporter_name,
                        a.c.supporter_country,
                        s.c.email,
                        a.c.language,
                        a.c.page_language,
                        a.c.subject,
                        a.c.body,
                        a.c.tweet,
                        a.c.created_at,
                        a.c.confirmed_at.is_not(None).label("confirmed"),
                    )
                    .join(s, s.c.id == a.c.supporter_id)
                    .where(a.c.id == appeal_id, a.c.supporter_name != "")
                )
            ).first()
        if row is None:
            return None
        return ReceiptAppeal(
            appeal_id=row.id,
            campaign_id=row.campaign_id,
            supporter_name=row.supporter_name,
            supporter_country=row.supporter_country,
            supporter_email=row.email,
            language=row.language,
            page_language=row.page_language or row.language,
            subject=row.subject,
            body=row.body,
            tweet=row.tweet,
            created_at=row.created_at,
            confirmed=bool(row.confirmed),
        )

    async def finish_receipt(
        self,
        receipt_id: int,
        *,
        status: str,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """``sent``, ``failed`` or ``queued`` again at ``retry_at``."""
        now = now or utcnow()
        values: dict[str, object] = {"status": status, "leased_until": None, "last_error": error}
        if status == "sent":
            values["sent_at"] = now
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        async with self._writing() as conn:
            await conn.execute(update(receipts).where(receipts.c.id == receipt_id).values(values))

    async def forget_appeal(self, appeal_id: str, *, key: bytes) -> bool | None:
        """Remove one appeal's personal data (as a campaign purge does); None when there is
        no such appeal, False while one of its deliveries is still pending."""
        a, d = appeals, deliveries
        async with self._writing() as conn:
            found = await conn.scalar(select(a.c.id).where(a.c.id == appeal_id))
            if found is None:
                return None
            pending = await conn.scalar(
                select(d.c.id).where(and_(d.c.appeal_id == appeal_id, d.c.status.in_(_PENDING)))
            )
            if pending is not None:
                return False
            await conn.execute(
                update(receipts)
                .where(receipts.c.appeal_id == appeal_id, receipts.c.status == "queued")
                .values(status="cancelled")
            )
            await forget_appeals(conn, [appeal_id], key)
            return True

    async def confirm_reply_to(self, appeal_id: str, *, now: dt.datetime | None = None) -> bool:
        """The supporter followed the link sent to their address: officials may reply to
        them. Their emails that waited are queued (with Reply-To). False for an appeal that
        did not ask for it, or whose data is gone; following the link again is harmless."""
        now = now or utcnow()
        a, d = appeals, deliveries
        asked = and_(a.c.id == appeal_id, a.c.reply_to, a.c.supporter_name != "")
        events: list[QueueEvent] = []
        async with self._writing(events) as conn:
            if await conn.scalar(select(a.c.id).where(asked)) is None:
                return False
            await conn.execute(
                update(a).where(asked, a.c.confirmed_at.is_(None)).values(confirmed_at=now)
            )
            waiting = await conn.execute(
                update(d)
                .where(
                    d.c.appeal_id == appeal_id,
                    d.c.status == DeliveryStatus.AWAITING_SUPPORTER.value,
                )
                .values(status=DeliveryStatus.QUEUED.value, next_attempt_at=now, updated_at=now)
            )
            if int(waiting.rowcount) > 0:
                events += [QueueEvent.QUEUED, QueueEvent.CHANGED]
        return True

    async def disown_appeal(
        self, appeal_id: str, *, alias: str, key: bytes, now: dt.datetime | None = None
    ) -> int | None:
        """ "This wasn't me": what has not gone out is cancelled, nothing is accepted or sent
        in the address's name again (its ``alias`` is kept), and the appeal's personal data
        goes once nothing of it is on its way. Returns how many deliveries were stopped;
        None for an unknown appeal."""
        now = now or utcnow()
        a, d = appeals, deliveries
        events: list[QueueEvent] = []
        async with self._writing(events) as conn:
            if await conn.scalar(select(a.c.id).where(a.c.id == appeal_id)) is None:
                return None
            stopped = await conn.execute(
                update(d)
                .where(d.c.appeal_id == appeal_id, d.c.status.in_(_NOT_GONE))
                .values(
                    status=DeliveryStatus.CANCELLED.value,
                    updated_at=now,
                    last_error_class=DISOWNED,
                    last_error_code=None,
                    last_error_message="the owner of the address said they did not send it",
                )
            )
            await conn.execute(
                upsert(suppressed_addresses, conn.dialect.name)
                .values(alias=alias, created_at=now)
                .on_conflict_do_nothing()
            )
            await conn.execute(
                update(receipts)
                .where(receipts.c.appeal_id == appeal_id, receipts.c.status == "queued")
                .values(status="cancelled")
            )
            events.append(QueueEvent.CHANGED)
            sending = await conn.scalar(
                select(d.c.id).where(d.c.appeal_id == appeal_id, d.c.status.in_(_PENDING))
            )
            if sending is None:
                await forget_appeals(conn, [appeal_id], key)
        return int(stopped.rowcount)
