"""The delivery log: one filter parser, pages of it, its changes, and a live follow.

The JSON API, its Server-Sent Events stream, the operator dashboard and ``dispatcher log
[--follow]`` all read the log through these functions, so a bad filter value gets the same
sentence everywhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from dispatcher.models import AttemptEntry, Channel, DeliveryStatus, LogEntry, QueueEvent
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError, invalid

MAX_PAGE = 500
_E = TypeVar("_E", bound=StrEnum)


def _member(kind: type[_E], field: str, value: str | None) -> _E | None:
    if not value:
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        accepted = ", ".join(member.value for member in kind)
        raise invalid(field, f"{field} {value!r} is not one of: {accepted}") from None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which deliveries to show; None means any."""

    campaign: str | None = None
    status: DeliveryStatus | None = None
    channel: Channel | None = None
    target: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        campaign: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        target: str | None = None,
    ) -> LogFilter:
        """From text as a query string or a command line gives it ('' means any).

        Raises ServiceError (invalid, naming ``status`` or ``channel``) for a value that is
        not a status or channel, with the accepted ones.
        """
        return cls(
            campaign=campaign or None,
            status=_member(DeliveryStatus, "status", status),
            channel=_member(Channel, "channel", channel),
            target=target or None,
        )

    def as_query(self) -> dict[str, str]:
        """The filter as query parameters (only those set)."""
        values = {
            "campaign": self.campaign,
            "status": self.status.value if self.status else None,
            "channel": self.channel.value if self.channel else None,
            "target": self.target,
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True, slots=True)
class LogPage:
    entries: list[LogEntry]
    next_cursor: str | None


async def delivery_page(
    service: Service, log_filter: LogFilter, *, cursor: str | None = None, limit: int = 100
) -> LogPage:
    """Newest deliveries first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    if cursor and not cursor.isdigit():
        raise invalid("cursor", f"cursor {cursor!r} is not a cursor from a previous page")
    if not 1 <= limit <= MAX_PAGE:
        raise invalid("limit", f"limit {limit} is not between 1 and {MAX_PAGE}")
    entries = await service.store.list_deliveries(
        campaign_id=log_filter.campaign,
        status=log_filter.status,
        channel=log_filter.channel,
        target_id=log_filter.target,
        before_id=int(cursor) if cursor else None,
        newest_first=True,
        limit=limit + 1,
    )
    page = entries[:limit]
    more = len(entries) > limit and bool(page)
    return LogPage(page, str(page[-1].id) if more else None)


async def delivery_changes(
    service: Service, log_filter: LogFilter, *, since: dt.datetime | None = None
) -> list[LogEntry]:
    """Matching deliveries in the order they last changed (from ``since`` on, if given)."""
    return await service.store.list_deliveries(
        campaign_id=log_filter.campaign,
        status=log_filter.status,
        channel=log_filter.channel,
        target_id=log_filter.target,
        updated_since=since,
    )


# How far before the newest change shown the live log looks again (see follow_deliveries).
LOOK_BACK = dt.timedelta(seconds=5)


async def follow_deliveries(
    service: Service,
    log_filter: LogFilter,
    *,
    since: dt.datetime,
    stop: asyncio.Event,
    interval: float = 0.5,
    seen: Iterable[LogEntry] = (),
) -> AsyncGenerator[list[LogEntry], None]:
    """Each change to a matching delivery from ``since`` on, as the store shows it.

    Yields a batch as soon as a change is announced (in this process, or from any process
    on PostgreSQL), and at least every ``interval`` seconds (empty when nothing changed,
    so a caller can send a heartbeat) until ``stop`` is set. ``seen`` are entries the caller
    already showed. Every delivery's latest state arrives; a state held for less than one interval
    can be skipped. Works the same whichever process changed the delivery.
    """
    shown = {(e.id, e.updated_at) for e in seen}
    changed = asyncio.Event()

    def heard(event: QueueEvent) -> None:
        if event is QueueEvent.CHANGED:
            changed.set()

    async with service.store.events(heard):
        while not stop.is_set():
            changed.clear()
            # Look back a little before the newest change shown: a transaction stamps its
            # changes before it commits, so one can appear after a later-stamped one.
            fresh = [
                entry
                for entry in await delivery_changes(service, log_filter, since=since - LOOK_BACK)
                if (entry.id, entry.updated_at) not in shown
            ]
            if fresh:
                since = max(since, *(entry.updated_at for entry in fresh))
                shown.update((entry.id, entry.updated_at) for entry in fresh)
                # Older changes cannot come back (the query starts there): forget them.
                shown = {key for key in shown if key[1] >= since - LOOK_BACK}
            yield fresh
            await _first_of(changed, stop, within=interval)
            # Let a burst of changes settle into one batch.
            await asyncio.sleep(min(0.05, interval))


async def _first_of(changed: asyncio.Event, stop: asyncio.Event, *, within: float) -> None:
    waits = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    entry: LogEntry
    attempts: list[AttemptEntry]


async def delivery_detail(service: Service, delivery_id: int) -> DeliveryDetail:
    """One delivery with every attempt; ServiceError (not found) when there is none."""
    entry = await service.store.get_delivery(delivery_id)
    if entry is None:
        raise ServiceError(ErrorKind.NOT_FOUND, f"no delivery {delivery_id}", "delivery_id")
    return DeliveryDetail(entry, await service.store.list_attempts(delivery_id))


async def delivery_attempts(service: Service, delivery_id: int) -> list[AttemptEntry]:
    """The attempts of one delivery, first to last (none for an unknown delivery)."""
    return await service.store.list_attempts(delivery_id)
