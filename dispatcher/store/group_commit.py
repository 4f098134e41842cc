"""Group commit: writes that arrive together share one transaction (and one fsync).

Whoever calls while a transaction is being written waits for the next one, which takes
everything that arrived meanwhile; a caller alone is written at once, so an idle system
pays no wait. Each caller's answer comes only once its transaction has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# One write's answers: a result per item, in order, or the exception that item met.
Answers = Sequence[R | BaseException]


class GroupCommit(Generic[T, R]):
    """Batches ``submit``-ted items into calls of ``write`` (one transaction each), at most
    ``most`` items a call. ``write`` answers each item; if it raises, every item of the
    call gets that exception (nothing of theirs was committed)."""

    def __init__(self, write: Callable[[list[T]], Awaitable[Answers[R]]], most: int = 256) -> None:
        self._write = write
        self._most = most
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="group-commit")
        # A caller that gives up (a client gone) does not stop the write others share.
        return await asyncio.shield(future)

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            try:
                answers = await self._write([item for item, _ in batch])
            except Exception as exc:  # every caller of the batch is told; the next goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException as exc:  # cancelled (shutting down): told, then stop
                for _, future in batch + self._waiting:
                    if not future.done():
                        future.set_exception(exc)
                self._waiting = []
                raise
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():
                    continue
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    async def close(self) -> None:
        """Wait for what was submitted to be written."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])
