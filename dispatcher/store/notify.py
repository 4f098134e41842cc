"""Wake-ups: "work was queued" and "a delivery changed", within a process and, on
PostgreSQL, across processes with LISTEN/NOTIFY.

A write that queues work or changes a delivery announces it: subscribers in this process
hear it at once; on PostgreSQL a ``NOTIFY`` in the same transaction reaches every other
process's listener when it commits. The listener holds one connection of its own; if it
is lost, subscribers simply hear less (their polling carries on) while it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from dispatcher.backoff import log_retry
from dispatcher.models import QueueEvent as Event

CHANNEL = "dispatcher_events"
_RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)
CHANGED_EVERY = 0.1


Subscriber = Callable[[Event], None]


class Notifier:
    """Subscribers of this process; a PostgreSQL listener while anyone subscribes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._subscribers: set[Subscriber] = set()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while LISTEN is in place (PostgreSQL)
        self._changed_at = -CHANGED_EVERY
        self._failures = 0  # reconnections in a row that did not hold

    async def announce(self, conn: AsyncConnection, *events: Event) -> None:
        """Inside a write transaction: tell other processes when it commits.

        "changed" goes out at most every ``CHANGED_EVERY`` seconds from one process (the
        worker changes deliveries hundreds of times a second; a live log needs a nudge,
        not each one): a change in between is shown with the next, or by the poll.
        """
        if conn.dialect.name == "postgresql":
            if Event.CHANGED in events:
                moment = time.monotonic()
                if moment - self._changed_at < CHANGED_EVERY:
                    events = tuple(e for e in events if e is not Event.CHANGED)
                else:
                    self._changed_at = moment
            for event in events:
                await conn.execute(
                    text("SELECT pg_notify(:channel, :event)"),
                    {"channel": CHANNEL, "event": event.value},
                )

    def publish(self, *events: Event) -> None:
        """After a commit: tell this process's subscribers."""
        for event in events:
            for subscriber in list(self._subscribers):
                subscriber(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, subscriber: Subscriber) -> AsyncIterator[None]:
        self._subscribers.add(subscriber)
        if self._engine.dialect.name == "postgresql" and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="listen")
        try:
            yield
        finally:
            self._subscribers.discard(subscriber)
            if not self._subscribers and self._listener is not None:
                listener, self._listener = self._listener, None
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _listen(self) -> None:
        """Hold a LISTEN connection; after losing it, reconnect with growing waits (they
        start over once a connection held)."""
        retrying = AsyncRetrying(
            wait=self._reconnect_wait,
            retry=retry_if_exception_type(Exception),
            before_sleep=log_retry("listening for queue events failed; polling meanwhile"),
        )
        async for attempt in retrying:
            with attempt:
                await self._hold_listen()

    def _reconnect_wait(self, _state: RetryCallState) -> float:
        wait = _RECONNECT_SECONDS[min(self._failures, len(_RECONNECT_SECONDS) - 1)]
        self._failures += 1
        return wait

    async def _hold_listen(self) -> None:
        """LISTEN until the connection is lost; raises then (or when it cannot connect)."""
        lost = asyncio.Event()

        def on_lost(_conn: Any) -> None:
            lost.set()

        async with self._engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            raw.add_termination_listener(on_lost)
            await raw.add_listener(CHANNEL, self._heard)
            self.listening.set()
            self._failures = 0
            try:
                await lost.wait()
            finally:
                self.listening.clear()
                if not raw.is_closed():
                    await raw.remove_listener(CHANNEL, self._heard)
            # The connection is gone: SQLAlchemy must not reuse it.
            await conn.invalidate()
        raise ConnectionError("the LISTEN connection was lost")

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = Event(payload)
        except ValueError:
            return
        self.publish(event)
