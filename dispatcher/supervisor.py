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
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


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

    @property
    def can_send(self) -> bool:
        """False once it gave up (or stopped): nothing here will run the job again."""
        return self.state not in (State.FAILED, State.STOPPED)

    async def run(self, stop: asyncio.Event) -> None:
        failed_in_a_row = 0
        while not stop.is_set():
            self.state, self.next_start = State.RUNNING, None
            started = time.monotonic()
            try:
                await self._job(stop)
            except Exception as exc:
                self.problem = str(exc) or type(exc).__name__
                traceback = None if isinstance(exc, self._expected) else exc
                log.error("%s stopped: %s", self.name, self.problem, exc_info=traceback)
            else:
                if stop.is_set():
                    break
                self.problem = f"{self.name} ended by itself"
                log.error("%s ended without being asked to", self.name)
            if time.monotonic() - started >= self._healthy_after:
                failed_in_a_row = 0
            failed_in_a_row += 1
            if self._give_up_after and failed_in_a_row >= self._give_up_after:
                self.state = State.FAILED
                log.error(
                    "%s failed %d times in a row: not starting it again", self.name, failed_in_a_row
                )
                return
            wait = self._backoff[min(failed_in_a_row - 1, len(self._backoff) - 1)]
            self.state, self.next_start = State.RESTARTING, time.monotonic() + wait
            log.warning("%s starts again in %.0f s", self.name, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            if not stop.is_set():
                self.restarts += 1
        self.state, self.next_start = State.STOPPED, None

    def describe(self) -> str:
        """One line for a health check: the state, and why and until when when it failed."""
        if self.state is State.RESTARTING and self.next_start is not None:
            left = max(0.0, self.next_start - time.monotonic())
            return f"restarting in {left:.0f} s after: {self.problem}"
        if self.state is State.FAILED:
            return f"failed (not restarted again): {self.problem}"
        return self.state.value
