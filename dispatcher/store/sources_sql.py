"""Where a campaign's appeals came from: counts by their ``source`` and UTM tags."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from dispatcher.models import SANDBOX, DeliveryStatus
from dispatcher.store.base import StoreBase
from dispatcher.store.schema import appeals, deliveries


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One combination of tags (None: not given) and what its appeals did."""

    source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    appeals: int
    actions: int  # delivered through a real provider
    rehearsed: int  # delivered to the sandbox


class SourcesStore(StoreBase):
    async def source_counts(self, campaign_id: str) -> list[SourceRow]:
        """Each combination of tags present, with its appeals and delivered deliveries
        (real and rehearsed apart), the most appeals first."""
        a, d = appeals, deliveries
        tags = (a.c.source, a.c.utm_source, a.c.utm_medium, a.c.utm_campaign)
        delivered = d.c.status == DeliveryStatus.DELIVERED.value
        sandbox = func.coalesce(d.c.provider, "") == SANDBOX
        statement = (
            select(
                *tags,
                func.count(a.c.id.distinct()),
                func.coalesce(func.sum(case((delivered & ~sandbox, 1), else_=0)), 0),
                func.coalesce(func.sum(case((delivered & sandbox, 1), else_=0)), 0),
            )
            .join(d, d.c.appeal_id == a.c.id)
            .where(a.c.campaign_id == campaign_id)
            .group_by(*tags)
            .order_by(func.count(a.c.id.distinct()).desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [SourceRow(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6])) for r in rows]
