"""A campaign's report: the totals operators read and the number shared with officials.

:class:`CampaignReport` is frozen and typed; the JSON API, the CSV export, the terminal
table and the pages all render from it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.campaigns import Campaign
from dispatcher.models import SENT_CHANNELS, DeliveryStatus, Settlement, utcnow
from dispatcher.service.catalog import find_campaign
from dispatcher.service.context import Service
from dispatcher.store.sources_sql import SourceRow

BUCKETS = ("delivered", "failed", "pending", "cancelled", "handed_off")
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
    DeliveryStatus.HANDED_OFF: "handed_off",
}


class Counts(BaseModel):
    """Deliveries by how they ended; ``failed`` includes those that expired at the deadline;
    ``handed_off``: X posts given to the supporter to send themselves (unverified)."""

    model_config = ConfigDict(frozen=True)

    delivered: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0
    handed_off: int = 0

    def in_order(self) -> tuple[int, ...]:
        """The counts in :data:`BUCKETS` order, for tables."""
        return (self.delivered, self.failed, self.pending, self.cancelled, self.handed_off)


class SelfReported(BaseModel):
    """Calls and posted letters supporters told us about: counted apart from ``actions``."""

    model_config = ConfigDict(frozen=True)

    total: int
    targets: dict[str, dict[str, int]] = Field(
        description="target id → kind (call, letter) → count"
    )


class Rehearsal(BaseModel):
    """What went to the built-in sandbox (a rehearsal: nothing reached the officials), in
    the same breakdown as the report. Never part of ``actions``."""

    model_config = ConfigDict(frozen=True)

    channels_now: list[str] = Field(
        description="channels that rehearse on the sandbox with the current settings"
    )
    appeals: int = Field(description="appeals whose every delivery went to the sandbox")
    supporters: int
    delivered: int = Field(description="deliveries the sandbox received")
    channels: dict[str, Counts] = Field(description="channel → counts")
    targets: dict[str, dict[str, Counts]] = Field(description="target id → channel → counts")


class Unverified(BaseModel):
    """X posts handed to supporters to send themselves from a prepared link: we cannot see
    whether they did, so they are counted here, never in ``actions``."""

    model_config = ConfigDict(frozen=True)

    handed_off: int = Field(description="posts handed to their supporters")
    opened: int = Field(description="of those, how many supporters opened the prepared post")
    targets: dict[str, int] = Field(description="target id → posts handed off")


class SourceCount(BaseModel):
    """Appeals from one combination of ``source`` and UTM tags (null: not given; all null:
    the campaign page reached without them, or the API without them)."""

    model_config = ConfigDict(frozen=True)

    source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    appeals: int
    actions: int = Field(description="their deliveries delivered through a real provider")
    rehearsal: int = Field(description="their deliveries the sandbox received")


class CampaignReport(BaseModel):
    """One campaign's totals. ``actions`` counts deliveries delivered through a real
    provider: the shared number. What went to the sandbox is in ``rehearsal``, apart."""

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
    rehearsal: Rehearsal
    unverified: Unverified
    sources: list[SourceCount] = Field(
        description="where the appeals came from (?source= and UTM tags), the most first"
    )


def _zero() -> dict[str, int]:
    return dict.fromkeys(BUCKETS, 0)


async def campaign_report(service: Service, campaign_id: str) -> CampaignReport:
    """Totals for one campaign; ServiceError (not found) for an unknown campaign."""
    campaign = find_campaign(service.catalog, campaign_id)
    store = service.for_reports
    appeals, supporters = await store.appeal_counts(campaign.id)
    live, rehearsal = _Breakdown(campaign), _Breakdown(campaign)
    for target_id, channel, status, rehearsing, count in await store.delivery_counts(campaign.id):
        (rehearsal if rehearsing else live).add(target_id, channel, status, count)
    rehearsed = await store.appeal_counts(campaign.id, rehearsal=True)
    settled = await store.settlement_counts(campaign.id)
    handed_off, opened = await store.hand_off_counts(campaign.id)
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
        actions=live.delivered(),
        channels=live.channels_counts(),
        targets=live.targets_counts(),
        self_reported=SelfReported(
            total=sum(sum(kinds.values()) for kinds in reported.values()), targets=reported
        ),
        reconciled=settled.get(Settlement.RECONCILED, 0),
        possible_duplicates=settled.get(Settlement.POSSIBLE_DUPLICATE, 0),
        rehearsal=Rehearsal(
            channels_now=[c.value for c in SENT_CHANNELS if service.rehearsing(c)],
            appeals=rehearsed[0],
            supporters=rehearsed[1],
            delivered=rehearsal.delivered(),
            channels=rehearsal.channels_counts(),
            targets=rehearsal.targets_counts(),
        ),
        unverified=Unverified(
            handed_off=sum(handed_off.values()), opened=opened, targets=handed_off
        ),
        sources=[_source(row) for row in await store.source_counts(campaign.id)],
    )


def _source(row: SourceRow) -> SourceCount:
    return SourceCount(
        source=row.source,
        utm_source=row.utm_source,
        utm_medium=row.utm_medium,
        utm_campaign=row.utm_campaign,
        appeals=row.appeals,
        actions=row.actions,
        rehearsal=row.rehearsed,
    )


class _Breakdown:
    """Counts by channel and by target × channel, as they are added up."""

    def __init__(self, campaign: Campaign) -> None:
        self.channels = {c.value: _zero() for c in SENT_CHANNELS}
        self.targets = {t.id: {c.value: _zero() for c in t.channels} for t in campaign.targets}

    def add(self, target_id: str, channel: str, status: str, count: int) -> None:
        bucket = _BUCKET[DeliveryStatus(status)]
        self.channels.setdefault(channel, _zero())[bucket] += count
        self.targets.setdefault(target_id, {}).setdefault(channel, _zero())[bucket] += count

    def delivered(self) -> int:
        return sum(c["delivered"] for c in self.channels.values())

    def channels_counts(self) -> dict[str, Counts]:
        return {name: Counts(**counts) for name, counts in self.channels.items()}

    def targets_counts(self) -> dict[str, dict[str, Counts]]:
        return {
            target: {name: Counts(**counts) for name, counts in by_channel.items()}
            for target, by_channel in self.targets.items()
        }


def report_csv(report: CampaignReport) -> str:
    """One row per target × channel, plus a total row per channel; the live figures
    (``mode`` live: what the officials received), then the rehearsal's (the sandbox's)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["campaign", "mode", "target", "channel", *BUCKETS])
    for mode, targets, channels in (
        ("live", report.targets, report.channels),
        ("rehearsal", report.rehearsal.targets, report.rehearsal.channels),
    ):
        for target_id, by_channel in targets.items():
            for channel, counts in by_channel.items():
                writer.writerow([report.campaign, mode, target_id, channel, *counts.in_order()])
        for channel, counts in channels.items():
            writer.writerow([report.campaign, mode, "(all)", channel, *counts.in_order()])
    return out.getvalue()
