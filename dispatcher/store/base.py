"""The store's connection handling: one engine, and write transactions that queue up
in-process on SQLite (one writer at a time) instead of spinning in its busy handler."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Self

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatcher.models import QueueEvent
from dispatcher.store.engine import (
    WRITE_OPTION,
    create_engine,
    mark_in_use,
    migrate,
    unreachable,
)
from dispatcher.store.notify import Notifier, Subscriber


class StoreBase:
    """An engine and its write transactions. ``await cls.open(url)`` also migrates."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._in_use: int | None = None  # see engine.mark_in_use
        # SQLite has one writer at a time. Queueing this process's writers here, instead of
        # letting each spin in SQLite's busy handler, keeps tail latency low under load.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self.notifier = Notifier(engine)

    def events(self, subscriber: Subscriber) -> contextlib.AbstractAsyncContextManager[None]:
        """While open, ``subscriber`` hears "queued" and "changed" (from other processes too,
        on PostgreSQL). Hearing nothing is always safe: it only saves a poll."""
        return self.notifier.subscribe(subscriber)

    @contextlib.asynccontextmanager
    async def _writing(self, events: Sequence[QueueEvent] = ()) -> AsyncIterator[AsyncConnection]:
        """A write transaction (SQLite: one at a time per process; others still wait on
        BEGIN IMMEDIATE with the busy timeout).

        ``events`` (a list the body may still add to) are announced to other processes in
        the transaction and published to this one's subscribers once it has committed;
        nothing is announced when the body raises."""
        one_writer = self._sqlite_writer or contextlib.nullcontext()
        async with one_writer, self._write_engine.begin() as conn:
            yield conn
            if events:
                await self.notifier.announce(conn, *events)
        if events:
            self.notifier.publish(*events)

    @classmethod
    async def open(cls, url: str, *, migrate_schema: bool = True) -> Self:
        store = cls(create_engine(url))
        store._in_use = mark_in_use(url)
        try:
            if migrate_schema:
                await migrate(store.engine)
            else:
                async with store.engine.connect():
                    pass
        except (OSError, SQLAlchemyError) as exc:
            await store.close()
            raise unreachable(store.engine, exc) from exc
        return store

    async def close(self) -> None:
        await self.engine.dispose()
        if self._in_use is not None:
            os.close(self._in_use)
            self._in_use = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name
