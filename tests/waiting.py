"""Waiting for something to have happened: a state or an event, never a guessed delay.

``eventually`` asks again and again (a store's rows, a sandbox's inbox, a page) until the
answer is what the test waits for, and fails the test naming what it waited for once its
time is up. That time bounds a wait; it is not a measurement: a test never asserts how
long something took.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import pytest

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]], *, what: str, within: float = ..., every: float = ...
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], *, what: str, within: float = ..., every: float = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any], *, what: str, within: float = 10.0, every: float = 0.02
) -> Any:
    """The first true answer of ``check()`` (a function or a coroutine function), asked
    every ``every`` seconds; after ``within`` seconds without one, the test fails saying
    it waited for ``what``. An exception ``check`` raises ends the wait."""
    deadline = time.monotonic() + within
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return answer
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {within:g} s for {what} in vain (last answer: {answer!r})")
        await asyncio.sleep(every)


def eventually_blocking(
    check: Callable[[], T], *, what: str, within: float = 10.0, every: float = 0.05
) -> T:
    """``eventually`` for code outside an event loop (a synchronous fixture)."""
    deadline = time.monotonic() + within
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {within:g} s for {what} in vain (last answer: {answer!r})")
        time.sleep(every)
