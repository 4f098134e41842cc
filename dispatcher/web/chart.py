"""The dashboard's chart: delivered deliveries per hour by channel, as SVG polyline points."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dispatcher.models import SENT_CHANNELS, DeliveryStatus
from dispatcher.store import LogEntry


def _hour(when: dt.datetime) -> dt.datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def delivery_chart(
    entries: list[LogEntry], *, width: int = 600, height: int = 160
) -> dict[str, Any]:
    """Deliveries per hour by channel (delivered, by when they settled), as SVG polylines."""
    delivered = [e for e in entries if e.status is DeliveryStatus.DELIVERED]
    if not delivered:
        return {"series": [], "width": width, "height": height, "labels": []}
    hours = sorted({_hour(e.updated_at) for e in delivered})
    start, end = hours[0], hours[-1]
    slots = int((end - start).total_seconds() // 3600) + 1
    counts = {c: [0] * slots for c in SENT_CHANNELS}
    for e in delivered:
        slot = int(
            (e.updated_at.replace(minute=0, second=0, microsecond=0) - start).total_seconds()
            // 3600
        )
        counts[e.channel][slot] += 1
    peak = max(max(v) for v in counts.values()) or 1
    step = width / max(slots - 1, 1)
    series = []
    for channel, values in counts.items():
        points = " ".join(
            f"{i * step:.1f},{height - (v / peak) * (height - 10):.1f}"
            for i, v in enumerate(values)
        )
        series.append({"channel": channel.value, "points": points, "total": sum(values)})
    labels = [(start + dt.timedelta(hours=i)).strftime("%d %b %H:00") for i in (0, slots - 1)]
    return {"series": series, "width": width, "height": height, "labels": labels, "peak": peak}
