"""A batching buffer: items gather while the last batch is written, and go in the next.

``put`` never waits. Whatever arrived since the last flush goes to ``flush`` as one batch
as soon as the previous batch is done — after ``max_wait`` seconds from the first of them
(so that a few more can join), or at once when ``max_size`` have gathered. One flush runs
at a time, so batches are written in the order their items arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TimedBuffer(Generic[T]):
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_wait: float = 0.0,
        max_size: int = 1000,
    ) -> None:
        self._flush = flush
        self.max_wait = max_wait
        self.max_size = max_size
        self._waiting: list[T] = []
        self._flushing: list[T] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    def put(self, item: T) -> None:
        self._waiting.append(item)
        self._idle.clear()
        self._arrived.set()
        if len(self._waiting) >= self.max_size:
            self._full.set()

    def pending(self) -> list[T]:
        """What is not flushed yet: being written, or waiting for the next batch."""
        return [*self._flushing, *self._waiting]

    async def idle(self) -> None:
        """Until everything put so far is flushed."""
        await self._idle.wait()

    def close(self) -> None:
        """``run`` ends once what was put is flushed (without waiting ``max_wait``)."""
        self._closing = True
        self._arrived.set()
        self._full.set()

    async def run(self) -> None:
        while True:
            await self._arrived.wait()
            if self.max_wait and not self._closing:
                await self._gather()
            self._arrived.clear()
            self._full.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                self._flushing = batch
                try:
                    await self._flush(batch)
                finally:
                    self._flushing = []
            if not self._waiting:
                self._idle.set()
                if self._closing:
                    return

    async def _gather(self) -> None:
        """``max_wait`` seconds for more to arrive, unless the batch fills up first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), timeout=self.max_wait)
