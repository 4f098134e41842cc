"""The store's connection handling: one engine, and write transactions that queue up
in-process on SQLite (one writer at a time) instead of spinning in its busy handler."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Self

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (SQLite: one at a time per process; others still wait on
        BEGIN IMMEDIATE with the busy timeout)."""
        if self._sqlite_writer is None:
            async with self._write_engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_writer, self._write_engine.begin() as conn:
            yield conn

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
