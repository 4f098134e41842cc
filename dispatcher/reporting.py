"""Reports and the delivery log: what operators read and what is shared with officials."""

from __future__ import annotations

import csv
import io
from typing import Any

from dispatcher.campaigns import Campaign
from dispatcher.models import SENT_CHANNELS, AttemptEntry, DeliveryStatus, ErrorInfo, LogEntry
from dispatcher.store import Store

# Report buckets: "failed" is every delivery that ended without arriving except cancelled.
_BUCKET = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.EXPIRED: "failed",
    DeliveryStatus.CANCELLED: "cancelled",
    DeliveryStatus.QUEUED: "pending",
    DeliveryStatus.SENDING: "pending",
    DeliveryStatus.AWAITING_CONFIRMATION: "pending",
}
BUCKETS = ("delivered", "failed", "pending", "cancelled")


def _empty() -> dict[str, int]:
    return dict.fromkeys(BUCKETS, 0)


async def campaign_report(store: Store, campaign: Campaign) -> dict[str, Any]:
    """Totals for one campaign. ``actions`` counts delivered deliveries: the shared number."""
    appeals, supporters = await store.appeal_counts(campaign.id)
    channels = {c.value: _empty() for c in SENT_CHANNELS}
    targets = {t.id: {c.value: _empty() for c in t.channels} for t in campaign.targets}
    for target_id, channel, status, count in await store.delivery_counts(campaign.id):
        bucket = _BUCKET[DeliveryStatus(status)]
        channels.setdefault(channel, _empty())[bucket] += count
        targets.setdefault(target_id, {}).setdefault(channel, _empty())[bucket] += count
    self_reported: dict[str, dict[str, int]] = {}
    for target_id, kind, count in await store.reported_action_counts(campaign.id):
        self_reported.setdefault(target_id, {})[kind] = count
    return {
        "campaign": campaign.id,
        "title": campaign.title,
        "deadline": campaign.deadline.isoformat(),
        "open": campaign.is_open(),
        "appeals": appeals,
        "supporters": supporters,
        "actions": sum(c["delivered"] for c in channels.values()),
        "channels": channels,
        "targets": targets,
        # Calls and posted letters supporters told us about: counted apart from `actions`.
        "self_reported": {
            "total": sum(sum(kinds.values()) for kinds in self_reported.values()),
            "targets": self_reported,
        },
    }


def report_csv(report: dict[str, Any]) -> str:
    """One row per target × channel, plus a total row per channel."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["campaign", "target", "channel", *BUCKETS])
    for target_id, by_channel in report["targets"].items():
        for channel, counts in by_channel.items():
            writer.writerow([report["campaign"], target_id, channel, *(counts[b] for b in BUCKETS)])
    for channel, counts in report["channels"].items():
        writer.writerow([report["campaign"], "(all)", channel, *(counts[b] for b in BUCKETS)])
    return out.getvalue()


def log_entry_json(entry: LogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "appeal_id": entry.appeal_id,
        "campaign": entry.campaign_id,
        "target": entry.target_id,
        "channel": entry.channel.value,
        "address": entry.address,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "provider_ref": entry.provider_ref,
        "last_error": error_json(entry.last_error),
        "next_attempt_at": entry.next_attempt_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
    }


def error_json(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"class": error.error_class, "code": error.code, "message": error.message}


def attempt_json(attempt: AttemptEntry) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "worker": attempt.worker,
        "started_at": attempt.started_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "outcome": attempt.outcome,
        "error": error_json(attempt.error),
        "provider_ref": attempt.provider_ref,
        "response_summary": attempt.response_summary,
    }
