"""Send slots: one semaphore per channel, and when the claim loop should ask again.

A claim asks only for a channel's free slots, and only once a third of them are free (or
the channel is idle), so that one claim fills several instead of one claim per finished
send. A channel whose last claim came back short is not asked again until a slot of it
frees up, work is announced, or the next delivery falls due.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping

from dispatcher.models import Channel, ClaimedDelivery, utcnow


class Slots:
    def __init__(self, sizes: Mapping[Channel, int]) -> None:
        self._sizes = dict(sizes)
        self._free = {channel: asyncio.Semaphore(n) for channel, n in self._sizes.items()}
        self._ask: set[Channel] = set(self._sizes)  # channels worth a claim
        self._wake = asyncio.Event()
        # When the next delivery falls due, as last looked up (or scheduled by this worker).
        self.due_at: dt.datetime | None = None

    @property
    def channels(self) -> list[Channel]:
        return list(self._sizes)

    def ask_all(self) -> None:
        """Look for due deliveries of every channel now."""
        self._ask.update(self._sizes)
        self._wake.set()

    def wanted(self, batch_size: int) -> dict[Channel, int]:
        """How many deliveries to claim per channel now."""
        self._wake.clear()
        wanted = {}
        for channel, size in self._sizes.items():
            free = self._free[channel]._value
            if channel in self._ask and (free >= max(1, size // 3) or (free and free == size)):
                wanted[channel] = min(batch_size, free)
        return wanted

    async def took(self, asked: Mapping[Channel, int], claimed: Iterable[ClaimedDelivery]) -> None:
        """A slot for each delivery claimed (free: the claim asked for no more); channels
        that came back short are not asked again until woken."""
        got: Counter[Channel] = Counter()
        for delivery in claimed:
            got[delivery.channel] += 1
            await self._free[delivery.channel].acquire()  # never waits: the slot was free
        for channel, n in asked.items():
            if got[channel] < n:
                self._ask.discard(channel)

    def release(self, channel: Channel) -> None:
        """A send ended: its channel is worth asking again."""
        self._free[channel].release()
        self._ask.add(channel)
        self._wake.set()

    def due_by(self, moment: dt.datetime) -> None:
        """Something this worker scheduled (a retry, a status poll) falls due then."""
        if self.due_at is None or moment < self.due_at:
            self.due_at = moment

    async def sleep(self, idle_seconds: float) -> None:
        """Until a slot frees up or work is announced, or at most until the next delivery
        falls due as last known (``idle_seconds`` at most): then every channel is asked."""
        wait = idle_seconds
        if self.due_at is not None:
            wait = min(wait, max(0.05, (self.due_at - utcnow()).total_seconds()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
        except TimeoutError:
            self._ask.update(self._sizes)
