"""The dashboard's chart: delivered deliveries per hour by channel, as SVG bars."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dispatcher.models import SENT_CHANNELS, Channel

MAX_HOURS = 48


def _hour(when: dt.datetime) -> dt.datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def delivery_chart(
    delivered: list[tuple[Channel, dt.datetime]], *, width: int = 600, height: int = 160
) -> dict[str, Any]:
    """Bars per hour (the last ``MAX_HOURS`` hours with deliveries), one per channel, from
    when each delivery was delivered."""
    if not delivered:
        return {"bars": [], "width": width, "height": height, "labels": [], "totals": {}}
    end = max(_hour(when) for _, when in delivered)
    start = max(min(_hour(when) for _, when in delivered), end - dt.timedelta(hours=MAX_HOURS - 1))
    slots = int((end - start).total_seconds() // 3600) + 1
    counts = {c: [0] * slots for c in SENT_CHANNELS}
    for channel, when in delivered:
        slot = int((_hour(when) - start).total_seconds() // 3600)
        if slot >= 0:
            counts[channel][slot] += 1
    peak = max(max(values) for values in counts.values()) or 1
    slot_width = width / slots
    bar_width = slot_width * 0.8 / len(SENT_CHANNELS)
    bars = []
    for j, (channel, values) in enumerate(counts.items()):
        for i, count in enumerate(values):
            bar_height = (count / peak) * (height - 4)
            bars.append(
                {
                    "channel": channel.value,
                    "x": round(i * slot_width + slot_width * 0.1 + j * bar_width, 1),
                    "y": round(height - bar_height, 1),
                    "width": round(bar_width, 1),
                    "height": round(bar_height, 1),
                    "title": f"{channel.value}: {count}",
                }
            )
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "labels": [
            start.strftime("%Y-%m-%d %H:00"),
            (end + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:00"),
        ],
        "totals": {c.value: sum(v) for c, v in counts.items()},
        "peak": peak,
    }
