"""When an official's fax line may be called: a daily window in the line's own time zone.

A campaign gives a target ``timezone`` (IANA, such as ``"Asia/Shanghai"``) and
``fax_hours`` (``"08:00-20:00"``, local to that zone). Outside the window a fax waits for
the next opening instead of ringing the line. A window may cross midnight
(``"22:00-06:00"``: from 22:00 until 06:00 the next morning). Pure functions of the time
they are given; no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")

# The error class the delivery log shows on a fax held for its line's hours.
FAX_HOURS = "FaxHours"

WINDOW_FORMAT = '"HH:MM-HH:MM" in 24-hour time, such as "08:00-20:00" (or "22:00-06:00" overnight)'


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; ValueError saying what is accepted when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{name!r} is not an IANA time zone (write a name such as 'Asia/Shanghai' "
            "or 'America/New_York')"
        ) from exc


def parse_window(window: str) -> tuple[dt.time, dt.time]:
    """``"08:00-20:00"`` → (08:00, 20:00); ValueError saying what is accepted otherwise."""
    found = _WINDOW.match(window.strip())
    if found is None:
        raise ValueError(f"{window!r} is not a daily window: write {WINDOW_FORMAT}")
    opens = dt.time(int(found.group(1)), int(found.group(2)))
    closes = dt.time(int(found.group(3)), int(found.group(4)))
    if opens == closes:
        raise ValueError(
            f"{window!r} opens and closes at the same time: leave fax_hours out for a line "
            "that may be called at any hour"
        )
    return opens, closes


@dataclass(frozen=True, slots=True)
class FaxHours:
    """A daily window ``[opens, closes)`` in ``zone``; overnight when ``closes < opens``."""

    zone: str
    opens: dt.time
    closes: dt.time

    @classmethod
    def parse(cls, window: str, zone: str) -> FaxHours:
        """ValueError (saying what is accepted) for a bad window or zone."""
        time_zone(zone)
        opens, closes = parse_window(window)
        return cls(zone, opens, closes)

    @property
    def window(self) -> str:
        """As written in a campaign file: ``"08:00-20:00"``."""
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"

    def _local(self, when: dt.datetime) -> dt.datetime:
        if when.tzinfo is None:
            raise ValueError("fax hours need a timezone-aware time")
        return when.astimezone(time_zone(self.zone))

    def is_open(self, when: dt.datetime) -> bool:
        """True if the line may be called at ``when`` (timezone-aware)."""
        local = self._local(when).time().replace(tzinfo=None)
        if self.opens < self.closes:
            return self.opens <= local < self.closes
        return local >= self.opens or local < self.closes

    def next_opening(self, when: dt.datetime) -> dt.datetime:
        """``when`` itself if the line is open then, else the first moment after it that it
        opens (in UTC). On a day the clocks skip the opening time, the first open moment
        after the skipped hour is taken."""
        if self.is_open(when):
            return when
        local = self._local(when)
        zone = time_zone(self.zone)
        for days in range(3):
            day = local.date() + dt.timedelta(days=days)
            # fold=0 for a time the clocks skip reads it with the offset before the change:
            # a moment after the gap, when the line is open.
            candidate = dt.datetime.combine(day, self.opens, tzinfo=zone).astimezone(dt.UTC)
            if candidate > when and self.is_open(candidate):
                return candidate
        raise AssertionError(f"no opening within two days of {when} for {self}")  # pragma: no cover
