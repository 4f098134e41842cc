"""Keeps a long-running job going: started again with growing waits after it fails, its
state readable by health checks and metrics.

``serve`` runs its worker under one: a worker that stops on a problem waiting does not
mend (a schema that does not match, an error in our code) is started again after 1, 2, 5,
10, 30, then every 60 seconds; a run that lasted a minute starts the waits over. After
``give_up_after`` failed starts in a row the supervisor gives up: its state is "failed",
health checks answer 503, and nothing in this process will send what it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable, Sequence

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from dispatcher.backoff import sleep_unless
from dispatcher.logs import get_logger

log = get_logger(__name__)

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class _EndedByItself(Exception):
    """The job returned without being asked to stop."""


class State(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # failed; waiting to start again
    FAILED = "failed"  # gave up
    STOPPED = "stopped"  # ended as asked


class Supervisor:
    """Runs ``job(stop)`` until ``stop`` is set, starting it again whenever it fails."""

    def __init__(
        self,
        name: str,
        job: Callable[[asyncio.Event], Awaitable[object]],
        *,
        give_up_after: int = 0,
        backoff: Sequence[float] = BACKOFF_SECONDS,
        healthy_after: float = 60.0,
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        self.name = name
        self._job = job
        self._give_up_after = give_up_after  # 0: never
        self._backoff = tuple(backoff)
        self._healthy_after = healthy_after
        self._expected = expected  # failures that explain themselves: no traceback logged
        self.state = State.STARTING
        self.restarts = 0  # starts after a failure, over the supervisor's life
        self.problem: str | None = None  # why the last run failed
        self.next_start: float | None = None  # monotonic time of the next start, if waiting
        self._in_a_row = 0  # failed runs in a row

    @property
    def can_send(self) -> bool:
        """False once it gave up (or stopped): nothing here will run the job again."""
        return self.state not in (State.FAILED, State.STOPPED)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the job, and start it again after each failure (tenacity drives the waits;
        the count of failures in a row is ours, as a long healthy run resets it)."""
        retrying = AsyncRetrying(
            stop=self._gives_up,
            wait=self._wait,
            retry=retry_if_exception_type(Exception),
            sleep=sleep_unless(stop),
            before_sleep=self._restarting,
            reraise=True,
        )
        with contextlib.suppress(Exception):  # given up: said, and the state says so
            async for attempt in retrying:
                with attempt:
                    if stop.is_set():
                        break
                    if attempt.retry_state.attempt_number > 1:
                        self.restarts += 1
                    await self._run_once(stop)
        if self.state is not State.FAILED:
            self.state, self.next_start = State.STOPPED, None

    async def _run_once(self, stop: asyncio.Event) -> None:
        """One run of the job; raises when it failed (or ended without being asked)."""
        self.state, self.next_start = State.RUNNING, None
        started = time.monotonic()
        try:
            await self._job(stop)
        except Exception as exc:
            self.problem = str(exc) or type(exc).__name__
            traceback = None if isinstance(exc, self._expected) else exc
            log.error("job stopped", job=self.name, problem=self.problem, exc_info=traceback)
            self._failed(started)
            raise
        if stop.is_set():
            return
        self.problem = f"{self.name} ended by itself"
        log.error("job ended without being asked to", job=self.name)
        self._failed(started)
        raise _EndedByItself(self.problem)

    def _failed(self, started: float) -> None:
        if time.monotonic() - started >= self._healthy_after:
            self._in_a_row = 0  # it ran well for a while: the waits start over
        self._in_a_row += 1

    def _gives_up(self, _state: RetryCallState) -> bool:
        if self._give_up_after and self._in_a_row >= self._give_up_after:
            self.state = State.FAILED
            log.error(
                "job failed too often: not starting it again",
                job=self.name,
                failed_in_a_row=self._in_a_row,
            )
            return True
        return False

    def _wait(self, _state: RetryCallState) -> float:
        return self._backoff[min(self._in_a_row - 1, len(self._backoff) - 1)]

    def _restarting(self, state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        self.state, self.next_start = State.RESTARTING, time.monotonic() + wait
        log.warning("job starts again", job=self.name, in_seconds=round(wait, 1))

    def describe(self) -> str:
        """One line for a health check: the state, and why and until when when it failed."""
        if self.state is State.RESTARTING and self.next_start is not None:
            left = max(0.0, self.next_start - time.monotonic())
            return f"restarting in {left:.0f} s after: {self.problem}"
        if self.state is State.FAILED:
            return f"failed (not restarted again): {self.problem}"
        return self.state.value
