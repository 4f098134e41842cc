"""The store: the only place that runs SQL. The deliveries table is the queue."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatcher.models import (
    PENDING_STATUSES,
    AttemptOutcome,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    ErrorInfo,
)
from dispatcher.store.engine import create_engine, migrate
from dispatcher.store.records import (
    AppealReceipt,
    AttemptEntry,
    DeliverySummary,
    DeliveryUpdate,
    LogEntry,
    NewAppeal,
    NewDelivery,
)
from dispatcher.store.schema import appeals, attempts, deliveries, supporters

_CLAIM_LOCK_KEY = 7_261_022
_PENDING = [s.value for s in PENDING_STATUSES]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _error(row: Any, prefix: str) -> ErrorInfo | None:
    cls = getattr(row, f"{prefix}class")
    if cls is None:
        return None
    return ErrorInfo(cls, getattr(row, f"{prefix}code"), getattr(row, f"{prefix}message") or "")


class Store:
    """Async access to supporters, appeals, deliveries and attempts.

    Open with ``await Store.open(url)``, which also brings the schema up to date.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        store = cls(create_engine(url))
        if migrate_schema:
            await migrate(store.engine)
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ------------------------------------------------------------------ intake

    async def create_appeal(
        self, appeal: NewAppeal, wanted: Sequence[NewDelivery], *, now: dt.datetime | None = None
    ) -> AppealReceipt:
        """Store supporter, appeal and one queued delivery per new (target, channel), atomically.

        Pairs this supporter already has a delivery for in this campaign are not created again;
        they come back in ``already_counted``. If none is new, no appeal is created and the
        existing appeal's id is returned. Safe against concurrent duplicates (unique index).
        """
        now = now or utcnow()
        for _ in range(3):
            try:
                async with self.engine.begin() as conn:
                    return await self._create_appeal(conn, appeal, wanted, now)
            except IntegrityError:
                # A concurrent identical submission won the race: look again.
                continue
        raise RuntimeError("could not store the appeal after 3 tries of concurrent duplicates")

    async def _create_appeal(
        self,
        conn: AsyncConnection,
        appeal: NewAppeal,
        wanted: Sequence[NewDelivery],
        now: dt.datetime,
    ) -> AppealReceipt:
        email_lc = appeal.supporter_email.lower()
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

        supporter_id = await self._upsert_supporter(conn, appeal, email_lc, now)
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

    async def _upsert_supporter(
        self, conn: AsyncConnection, appeal: NewAppeal, email_lc: str, now: dt.datetime
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

    # ------------------------------------------------------------------ the queue

    async def claim_due_deliveries(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: float,
        now: dt.datetime | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries to ``worker`` and open an attempt for each send.

        Due: queued and ``next_attempt_at`` passed; sending with an expired lease (its worker
        died; that attempt's outcome becomes ``unknown``); awaiting confirmation and its
        next status poll is due. Queued deliveries past their campaign deadline are expired
        here instead. A fax number has at most one fax in flight: a fax is not claimed while
        another to the same number is being sent or awaits confirmation, and only the oldest
        due fax per number is claimed.
        """
        now = now or utcnow()
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Serialise claims so the per-number fax check sees every other claim.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK_KEY}
                )
            await self._expire_overdue(conn, now)
            candidates = self._due_candidates(now, limit)
            if conn.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            d = deliveries
            polling = d.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value
            claimed = (
                await conn.execute(
                    update(d)
                    .where(d.c.id.in_(candidates.scalar_subquery()))
                    .values(
                        status=case(
                            (polling, DeliveryStatus.AWAITING_CONFIRMATION.value),
                            else_=DeliveryStatus.SENDING.value,
                        ),
                        attempts=case((polling, d.c.attempts), else_=d.c.attempts + 1),
                        lease_until=lease_until,
                        lease_owner=worker,
                        updated_at=now,
                    )
                    .returning(d.c.id, d.c.status, d.c.attempts)
                )
            ).all()
            if not claimed:
                return []
            sends = [r for r in claimed if r.status == DeliveryStatus.SENDING.value]
            if sends:
                # A previous attempt still open here was cut off by a lost lease.
                await conn.execute(
                    update(attempts)
                    .where(
                        attempts.c.delivery_id.in_([r.id for r in sends]),
                        attempts.c.outcome.is_(None),
                    )
                    .values(
                        outcome=AttemptOutcome.UNKNOWN.value,
                        finished_at=now,
                        error_class="LeaseExpired",
                        error_message="the worker stopped before recording an outcome; "
                        "the provider may or may not have received it",
                    )
                )
                await conn.execute(
                    insert(attempts),
                    [
                        {
                            "delivery_id": r.id,
                            "number": r.attempts,
                            "worker": worker,
                            "started_at": now,
                        }
                        for r in sends
                    ],
                )
            return await self._load_claimed(conn, [r.id for r in claimed])

    def _due_candidates(self, now: dt.datetime, limit: int) -> Any:
        d = deliveries
        other = deliveries.alias("other")
        earlier = deliveries.alias("earlier")
        fax = Channel.FAX.value
        # Two EXISTS with an equality on status each, so both are index searches on
        # ix_deliveries_line instead of a walk through every delivery to that number.
        awaiting_on_line = exists().where(
            other.c.channel == fax,
            other.c.address == d.c.address,
            other.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value,
            other.c.id != d.c.id,
        )
        sending_on_line = exists().where(
            other.c.channel == fax,
            other.c.address == d.c.address,
            other.c.status == DeliveryStatus.SENDING.value,
            other.c.id != d.c.id,
            other.c.lease_until >= now,
        )
        older_fax_waiting = exists().where(
            earlier.c.channel == fax,
            earlier.c.address == d.c.address,
            earlier.c.id < d.c.id,
            earlier.c.status == DeliveryStatus.QUEUED.value,
            earlier.c.next_attempt_at <= now,
        )
        send_due = or_(
            and_(d.c.status == DeliveryStatus.QUEUED.value, d.c.next_attempt_at <= now),
            and_(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until < now),
        )
        paced = or_(
            d.c.channel != fax, and_(~awaiting_on_line, ~sending_on_line, ~older_fax_waiting)
        )
        poll_due = and_(
            d.c.status == DeliveryStatus.AWAITING_CONFIRMATION.value,
            d.c.next_attempt_at <= now,
            or_(d.c.lease_until.is_(None), d.c.lease_until < now),
        )
        return (
            select(d.c.id)
            # The IN lets the planner read only pending rows (ix_deliveries_due).
            .where(d.c.status.in_(_PENDING), or_(and_(send_due, paced), poll_due))
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )

    async def _expire_overdue(self, conn: AsyncConnection, now: dt.datetime) -> None:
        d = deliveries
        await conn.execute(
            update(d)
            .where(
                d.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value]),
                d.c.expires_at <= now,
                or_(
                    d.c.status == DeliveryStatus.QUEUED.value,
                    and_(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until < now),
                ),
            )
            .values(
                status=DeliveryStatus.EXPIRED.value,
                lease_until=None,
                lease_owner=None,
                updated_at=now,
                last_error_class="Expired",
                last_error_code=None,
                last_error_message=case(
                    (
                        d.c.last_error_message.is_(None),
                        "the campaign deadline passed before it was sent",
                    ),
                    else_=literal("the campaign deadline passed before a retry; last error: ")
                    + d.c.last_error_message,
                ),
            )
        )

    async def _load_claimed(self, conn: AsyncConnection, ids: list[int]) -> list[ClaimedDelivery]:
        d, a = deliveries, appeals
        earlier = attempts.alias("earlier")
        unknown_before = exists().where(
            earlier.c.delivery_id == d.c.id,
            earlier.c.number < d.c.attempts,
            or_(earlier.c.outcome.is_(None), earlier.c.outcome == AttemptOutcome.UNKNOWN.value),
        )
        rows = (
            await conn.execute(
                select(
                    d.c.id,
                    d.c.appeal_id,
                    d.c.campaign_id,
                    d.c.target_id,
                    d.c.target_name,
                    d.c.salutation,
                    d.c.channel,
                    d.c.address,
                    d.c.status,
                    d.c.attempts,
                    d.c.provider_ref,
                    d.c.expires_at,
                    d.c.supporter_email_lc,
                    a.c.supporter_name,
                    a.c.supporter_country,
                    a.c.language,
                    a.c.subject,
                    a.c.body,
                    a.c.tweet,
                    supporters.c.email.label("supporter_email"),
                    unknown_before.label("earlier_outcome_unknown"),
                )
                .select_from(
                    d.join(a, a.c.id == d.c.appeal_id).join(
                        supporters, supporters.c.id == a.c.supporter_id
                    )
                )
                .where(d.c.id.in_(ids))
                .order_by(d.c.id)
            )
        ).all()
        return [
            ClaimedDelivery(
                id=r.id,
                appeal_id=r.appeal_id,
                campaign_id=r.campaign_id,
                target_id=r.target_id,
                target_name=r.target_name,
                salutation=r.salutation,
                channel=Channel(r.channel),
                address=r.address,
                status=DeliveryStatus(r.status),
                attempts=r.attempts,
                provider_ref=r.provider_ref,
                expires_at=r.expires_at,
                supporter_name=r.supporter_name,
                supporter_email=r.supporter_email,
                supporter_country=r.supporter_country,
                language=r.language,
                subject=r.subject,
                body=r.body,
                tweet=r.tweet,
                earlier_outcome_unknown=bool(r.earlier_outcome_unknown),
            )
            for r in rows
        ]

    async def record_outcomes(
        self, worker: str, updates: Sequence[DeliveryUpdate], *, now: dt.datetime | None = None
    ) -> int:
        """Record a batch of outcomes in one transaction; returns how many deliveries changed.

        A delivery whose lease this worker no longer holds is left alone (another worker took
        it over after the lease expired), but its attempt row is still closed.
        """
        if not updates:
            return 0
        now = now or utcnow()
        d = deliveries
        changed = 0
        async with self.engine.begin() as conn:
            for u in updates:
                values: dict[str, Any] = {
                    "status": u.status.value,
                    "lease_until": None,
                    "lease_owner": None,
                    "updated_at": now,
                }
                if u.next_attempt_at is not None:
                    values["next_attempt_at"] = u.next_attempt_at
                if u.provider_ref is not None:
                    values["provider_ref"] = u.provider_ref
                if u.error is not None:
                    values |= {
                        "last_error_class": u.error.error_class,
                        "last_error_code": u.error.code,
                        "last_error_message": u.error.message,
                    }
                elif u.status is DeliveryStatus.DELIVERED:
                    values |= {
                        "last_error_class": None,
                        "last_error_code": None,
                        "last_error_message": None,
                    }
                result = await conn.execute(
                    update(d)
                    .where(d.c.id == u.delivery_id, d.c.lease_owner == worker)
                    .values(values)
                )
                changed += result.rowcount
                if u.attempt_outcome is not None:
                    current = select(d.c.attempts).where(d.c.id == u.delivery_id).scalar_subquery()
                    await conn.execute(
                        update(attempts)
                        .where(
                            attempts.c.delivery_id == u.delivery_id, attempts.c.number == current
                        )
                        .values(
                            finished_at=now,
                            outcome=u.attempt_outcome.value,
                            error_class=u.error.error_class if u.error else None,
                            error_code=u.error.code if u.error else None,
                            error_message=u.error.message if u.error else None,
                            provider_ref=u.provider_ref,
                            response_summary=u.response_summary,
                        )
                    )
        return changed

    async def release(
        self, worker: str, ids: Sequence[int], *, now: dt.datetime | None = None
    ) -> None:
        """Hand leased deliveries back untouched (shutdown before their send began)."""
        if not ids:
            return
        now = now or utcnow()
        d = deliveries
        async with self.engine.begin() as conn:
            sending = d.c.status == DeliveryStatus.SENDING.value
            await conn.execute(
                attempts.delete().where(
                    attempts.c.delivery_id.in_(ids),
                    attempts.c.outcome.is_(None),
                    attempts.c.worker == worker,
                )
            )
            await conn.execute(
                update(d)
                .where(d.c.id.in_(ids), d.c.lease_owner == worker)
                .values(
                    status=case((sending, DeliveryStatus.QUEUED.value), else_=d.c.status),
                    attempts=case((sending, d.c.attempts - 1), else_=d.c.attempts),
                    lease_until=None,
                    lease_owner=None,
                    updated_at=now,
                )
            )

    async def pending_count(self, campaign_id: str | None = None) -> int:
        """Deliveries still queued, sending or awaiting confirmation."""
        query = (
            select(func.count()).select_from(deliveries).where(deliveries.c.status.in_(_PENDING))
        )
        if campaign_id is not None:
            query = query.where(deliveries.c.campaign_id == campaign_id)
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def next_due_at(self) -> dt.datetime | None:
        """The earliest time a pending delivery becomes due (ignoring pacing)."""
        d = deliveries
        due = case(
            (d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until),
            else_=d.c.next_attempt_at,
        )
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(d.c.status, d.c.lease_until, d.c.next_attempt_at)
                    .where(d.c.status.in_(_PENDING))
                    .order_by(due)
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        when = (
            row.lease_until if row.status == DeliveryStatus.SENDING.value else row.next_attempt_at
        )
        return when if isinstance(when, dt.datetime) else None

    # ------------------------------------------------------------------ reading

    async def delivery_counts(self, campaign_id: str) -> list[tuple[str, str, str, int]]:
        """(target_id, channel, status, count) for every combination present."""
        d = deliveries
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(d.c.target_id, d.c.channel, d.c.status, func.count())
                    .where(d.c.campaign_id == campaign_id)
                    .group_by(d.c.target_id, d.c.channel, d.c.status)
                )
            ).all()
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def appeal_counts(self, campaign_id: str) -> tuple[int, int]:
        """(appeals, distinct supporters) for a campaign."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.count(appeals.c.supporter_id.distinct())).where(
                        appeals.c.campaign_id == campaign_id
                    )
                )
            ).one()
        return int(row[0]), int(row[1])

    async def list_deliveries(
        self,
        *,
        campaign_id: str | None = None,
        status: DeliveryStatus | None = None,
        appeal_id: str | None = None,
        updated_since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """The delivery log, oldest change first."""
        d = deliveries
        query = select(d).order_by(d.c.updated_at, d.c.id)
        if campaign_id is not None:
            query = query.where(d.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(d.c.status == status.value)
        if appeal_id is not None:
            query = query.where(d.c.appeal_id == appeal_id)
        if updated_since is not None:
            query = query.where(d.c.updated_at >= updated_since)
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_log_entry(r) for r in rows]

    async def list_attempts(self, delivery_id: int) -> list[AttemptEntry]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(attempts)
                    .where(attempts.c.delivery_id == delivery_id)
                    .order_by(attempts.c.number)
                )
            ).all()
        return [
            AttemptEntry(
                delivery_id=r.delivery_id,
                number=r.number,
                worker=r.worker,
                started_at=r.started_at,
                finished_at=r.finished_at,
                outcome=r.outcome,
                error=_error(r, "error_"),
                provider_ref=r.provider_ref,
                response_summary=r.response_summary,
            )
            for r in rows
        ]


def _log_entry(r: Row[Any]) -> LogEntry:
    return LogEntry(
        id=r.id,
        appeal_id=r.appeal_id,
        campaign_id=r.campaign_id,
        target_id=r.target_id,
        channel=Channel(r.channel),
        address=r.address,
        status=DeliveryStatus(r.status),
        attempts=r.attempts,
        provider_ref=r.provider_ref,
        last_error=_error(r, "last_error_"),
        next_attempt_at=r.next_attempt_at,
        updated_at=r.updated_at,
    )
