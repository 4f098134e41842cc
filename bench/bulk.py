"""Queued deliveries in bulk, straight into the real tables: a supporter and an appeal
per ten deliveries (each to its own target, so the dedupe index holds), every delivery
queued and due at once. ``INSERT … SELECT`` over a generated series, so a million rows
take seconds on either database, not a round trip each.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatcher.models import Channel, DeliveryStatus, utcnow
from dispatcher.store.schema import UTCDateTime

PER_APPEAL = 10  # deliveries per appeal (one per target)

_SUPPORTERS = """
INSERT INTO supporters (email_lc, email, name, created_at)
SELECT 'bulk' || n || '@example.org', 'bulk' || n || '@example.org', 'Supporter ' || n, :now
FROM g WHERE n > :offset / {per}
"""

_APPEALS = """
INSERT INTO appeals (id, campaign_id, supporter_id, supporter_name, language, subject,
                     body, own_message, created_at)
SELECT 'bulk' || n, :campaign, s.id, 'Supporter ' || n, 'en', 'An appeal',
       'Dear {{salutation}}, please let them go.', false, :now
FROM g JOIN supporters s ON s.email_lc = 'bulk' || n || '@example.org'
WHERE n > :offset / {per}
"""

_DELIVERIES = """
INSERT INTO deliveries (appeal_id, campaign_id, supporter_email_lc, target_id, target_name,
                        salutation, channel, address, status, attempts, next_attempt_at,
                        paused_attempts, expires_at, created_at, updated_at)
SELECT 'bulk' || ((n - 1) / {per} + 1), :campaign,
       'bulk' || ((n - 1) / {per} + 1) || '@example.org', 'target-' || ((n - 1) % {per}),
       'Official ' || ((n - 1) % {per}), 'Official', :channel,
       'office' || ((n - 1) % {per}) || '@example.org', :status, 0, :due, 0, :expires,
       :now, :now
FROM g WHERE n > :offset
"""


def _series(dialect: str) -> str:
    if dialect == "postgresql":
        return "WITH g(n) AS (SELECT generate_series(1, :count)) "
    return "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count) "


def _statement(dialect: str, body: str) -> TextClause:
    times = [bindparam(k, type_=UTCDateTime) for k in ("now", "due", "expires") if f":{k}" in body]
    return text(_series(dialect) + body.format(per=PER_APPEAL)).bindparams(*times)


async def fill(
    engine: AsyncEngine,
    count: int,
    *,
    campaign: str,
    already: int = 0,
    channel: Channel = Channel.EMAIL,
    due: dt.datetime | None = None,
) -> None:
    """Queue deliveries ``already + 1`` … ``count`` (``already`` must be a multiple of
    ten: a table grows in steps) of ``campaign`` on ``channel``, due at ``due`` (now)."""
    assert already % PER_APPEAL == 0 and count >= already
    now = utcnow()
    dialect = engine.dialect.name
    params = {
        "now": now,
        "due": due or now,
        "expires": now + dt.timedelta(days=30),
        "campaign": campaign,
        "channel": channel.value,
        "status": DeliveryStatus.QUEUED.value,
        "offset": already,
    }
    appeals = -(-count // PER_APPEAL)
    async with engine.begin() as conn:
        for body, rows in ((_SUPPORTERS, appeals), (_APPEALS, appeals), (_DELIVERIES, count)):
            statement = _statement(dialect, body)
            used = {k: v for k, v in params.items() if f":{k}" in body} | {"count": rows}
            await conn.execute(statement, used)
        if dialect == "postgresql":
            await conn.execute(text("ANALYZE supporters, appeals, deliveries"))
        else:
            await conn.execute(text("ANALYZE"))
