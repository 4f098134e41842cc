"""Retrying our own infrastructure (the database, the LISTEN connection, an SMTP relay's
kept connections, a job under supervision) through tenacity, with waits a stop can cut.

A delivery's retries are something else: the fast tries inside one attempt are tenacity's
too (:mod:`dispatcher.retry`), and the schedule between attempts is stored in the
database so that it outlives the process (``RetryPolicy``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_never,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from dispatcher.logs import get_logger

log = get_logger(__name__)

# Waits between tries while the database is unreachable: 0.1 s, doubling, then 5 s for ever.
DATABASE_WAIT = wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.05)


def sleep_unless(stop: asyncio.Event | None) -> Callable[[float], Awaitable[None]]:
    """tenacity's sleep, cut short when ``stop`` is set (the next try then goes at once,
    and the caller's own loop sees ``stop``)."""

    async def sleep(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    return sleep


def log_retry(what: str, **fields: object) -> Callable[[RetryCallState], None]:
    """A ``before_sleep`` hook: one warning per failed try, with the error and the wait."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "trying again",
            failed=what,
            error=repr(error),
            retry_in_seconds=round(wait, 3),
            tries=state.attempt_number,
            **fields,
        )

    return before_sleep


class stop_after_lasting(stop_base):
    """Stop once ``tries`` failures in a row had a problem that waiting does not mend
    (``lasting`` names it, or returns None when waiting may help)."""

    def __init__(self, lasting: Callable[[BaseException], str | None], tries: int) -> None:
        self._lasting = lasting
        self._tries = tries
        self._in_a_row = 0
        self.problem: str | None = None

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        problem = self._lasting(error) if error is not None else None
        self._in_a_row = self._in_a_row + 1 if problem else 0
        self.problem = problem
        return self._in_a_row >= self._tries


def retrying_database(
    what: str,
    *,
    stop: asyncio.Event | None = None,
    give_up: stop_base = stop_never,
    wait: wait_base = DATABASE_WAIT,
    **fields: object,
) -> AsyncRetrying:
    """Retry a database call through any error until ``give_up`` says stop (then the last
    error is raised), logging each failure; waits end early once ``stop`` is set."""
    return AsyncRetrying(
        stop=give_up,
        wait=wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception)),
        sleep=sleep_unless(stop),
        before_sleep=log_retry(what, **fields),
        reraise=True,
    )
