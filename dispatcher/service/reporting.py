"""A campaign's report: the totals operators read and the number shared with officials.

:class:`CampaignReport` is frozen and typed; the JSON API, the CSV export, the terminal
table and the pages all render from it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.models import SENT_CHANNELS, DeliveryStatus, Settlement, utcnow
from dispatcher.service.catalog import find_campaign
from dispatcher.service.context import Service

BUCKETS = ("delivered", "failed", "pending", "cancelled")
# Report buckets: "failed" is every delivery that ended without arriving except cancelled.
_BUCKET = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.EXPIRED: "failed",
    DeliveryStatus.CANCELLED: "cancelled",
    DeliveryStatus.HELD: "pending",
    DeliveryStatus.AWAITING_SUPPORTER: "pending",
    DeliveryStatus.QUEUED: "pending",
    DeliveryStatus.SENDING: "pending",
    DeliveryStatus.AWAITING_CONFIRMATION: "pending",
}


class Counts(BaseModel):
    """Deliveries by how they ended; ``failed`` includes those that expired at the deadline."""

    model_config = ConfigDict(frozen=True)

    delivered: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0

    def in_order(self) -> tuple[int, ...]:
        """The counts in :data:`BUCKETS` order, for tables."""
        return (self.delivered, self.failed, self.pending, self.cancelled)


class SelfReported(BaseModel):
    """Calls and posted letters supporters told us about: counted apart from ``actions``."""

    model_config = ConfigDict(frozen=True)

    total: int
    targets: dict[str, dict[str, int]] = Field(
        description="target id → kind (call, letter) → count"
    )


class CampaignReport(BaseModel):
    """One campaign's totals. ``actions`` counts delivered deliveries: the shared number."""

    model_config = ConfigDict(frozen=True)

    campaign: str = Field(description="campaign id")
    title: str
    deadline: dt.date
    open: bool
    appeals: int
    supporters: int
    actions: int = Field(description="delivered deliveries: the number shared with officials")
    channels: dict[str, Counts] = Field(description="channel → counts")
    targets: dict[str, dict[str, Counts]] = Field(description="target id → channel → counts")
    self_reported: SelfReported
    reconciled: int = Field(
        description="delivered deliveries settled by asking the provider after a try whose "
        "outcome was unknown (counted once in actions)"
    )
    possible_duplicates: int = Field(
        description="delivered deliveries sent again after a try whose outcome was unknown, "
        "to a provider that cannot be asked (email): the official may have two copies; "
        "counted once in actions"
    )


def _zero() -> dict[str, int]:
    return dict.fromkeys(BUCKETS, 0)


async def campaign_report(service: Service, campaign_id: str) -> CampaignReport:
    """Totals for one campaign; ServiceError (not found) for an unknown campaign."""
    campaign = find_campaign(service.catalog, campaign_id)
    store = service.store
    appeals, supporters = await store.appeal_counts(campaign.id)
    channels = {c.value: _zero() for c in SENT_CHANNELS}
    targets = {t.id: {c.value: _zero() for c in t.channels} for t in campaign.targets}
    for target_id, channel, status, count in await store.delivery_counts(campaign.id):
        bucket = _BUCKET[DeliveryStatus(status)]
        channels.setdefault(channel, _zero())[bucket] += count
        targets.setdefault(target_id, {}).setdefault(channel, _zero())[bucket] += count
    settled = await store.settlement_counts(campaign.id)
    reported: dict[str, dict[str, int]] = {}
    for target_id, kind, count in await store.reported_action_counts(campaign.id):
        reported.setdefault(target_id, {})[kind] = count
    return CampaignReport(
        campaign=campaign.id,
        title=campaign.title,
        deadline=campaign.deadline,
        open=campaign.is_open(utcnow()),
        appeals=appeals,
        supporters=supporters,
        actions=sum(c["delivered"] for c in channels.values()),
        channels={name: Counts(**counts) for name, counts in channels.items()},
        targets={
            target: {name: Counts(**counts) for name, counts in by_channel.items()}
            for target, by_channel in targets.items()
        },
        self_reported=SelfReported(
            total=sum(sum(kinds.values()) for kinds in reported.values()), targets=reported
        ),
        reconciled=settled.get(Settlement.RECONCILED, 0),
        possible_duplicates=settled.get(Settlement.POSSIBLE_DUPLICATE, 0),
    )


def report_csv(report: CampaignReport) -> str:
    """One row per target × channel, plus a total row per channel."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["campaign", "target", "channel", *BUCKETS])
    for target_id, by_channel in report.targets.items():
        for channel, counts in by_channel.items():
            writer.writerow([report.campaign, target_id, channel, *counts.in_order()])
    for channel, counts in report.channels.items():
        writer.writerow([report.campaign, "(all)", channel, *counts.in_order()])
    return out.getvalue()
