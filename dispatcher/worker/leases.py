"""The leases a worker holds: from the claim until the outcome is written.

Every third of ``lease_seconds`` the keeper renews them all in one statement. Before a send
starts, and again right before anything goes on the wire, the delivery's :class:`Guard`
answers whether at least a third of its lease surely remains (counted from when the claim
or the renewal was asked for): a worker that could not renew for that long hands the
delivery back rather than risk sending it alongside the worker that takes it over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from tenacity import stop_after_delay

from dispatcher.backoff import retrying_database
from dispatcher.logs import get_logger

log = get_logger(__name__)

Renew = Callable[[Sequence[int]], Awaitable[Iterable[int]]]


class Guard:
    """One delivery's lease, as the worker last knew it (handed to the adapter's send)."""

    __slots__ = ("_delivery_id", "_keeper")

    def __init__(self, keeper: LeaseKeeper, delivery_id: int) -> None:
        self._keeper = keeper
        self._delivery_id = delivery_id

    def held(self) -> bool:
        return self._keeper.still_leased(self._delivery_id)


class LeaseKeeper:
    def __init__(self, renew: Renew, lease_seconds: float) -> None:
        self._renew = renew
        self.seconds = lease_seconds
        # Until when (monotonic) each held delivery is surely still leased here.
        self._until: dict[int, float] = {}

    def held(self) -> list[int]:
        """Every delivery claimed here whose outcome is not written yet."""
        return list(self._until)

    def took(self, delivery_ids: Iterable[int], asked_at: float) -> None:
        """Claimed: leased for ``lease_seconds`` from when the claim was asked for."""
        for delivery_id in delivery_ids:
            self._until[delivery_id] = asked_at + self.seconds

    def released(self, delivery_ids: Iterable[int]) -> None:
        """Their outcomes are written: the leases are no longer this worker's concern."""
        for delivery_id in delivery_ids:
            self._until.pop(delivery_id, None)

    def guard(self, delivery_id: int) -> Guard:
        return Guard(self, delivery_id)

    def still_leased(self, delivery_id: int) -> bool:
        """True while at least a third of the lease surely remains: safe to start a send."""
        margin = self.seconds / 3
        return time.monotonic() < self._until.get(delivery_id, 0.0) - margin

    async def run(self) -> None:
        """Renew every third of the lease; a failed renewal is tried again within it."""
        interval = self.seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew_all(within=interval)
            except Exception as exc:
                # The guards tell sends to hold back meanwhile; the next round tries again.
                log.warning("could not renew leases this round", error=repr(exc))

    async def _renew_all(self, within: float) -> None:
        async for attempt in retrying_database(
            "could not renew leases", give_up=stop_after_delay(within)
        ):
            with attempt:
                held = self.held()
                if not held:
                    return
                asked_at = time.monotonic()
                renewed = set(await self._renew(held))
        for delivery_id in held:
            if delivery_id not in self._until:
                continue  # written meanwhile
            self._until[delivery_id] = asked_at + self.seconds if delivery_id in renewed else 0.0
