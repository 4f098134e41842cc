"""The supervisor that keeps `serve`'s worker going: restarts with growing waits, gives up
after a limit, and stops when asked. The jobs here are plain coroutines that fail on cue."""

from __future__ import annotations

import asyncio

from dispatcher.supervisor import State, Supervisor
from tests.waiting import eventually

QUICK = (0.01, 0.02, 0.04)


class FailsThenRuns:
    """A job that raises on its first ``failures`` starts, then runs until stopped."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts = 0
        self.running = asyncio.Event()

    async def __call__(self, stop: asyncio.Event) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise RuntimeError(f"start {self.starts} failed")
        self.running.set()
        await stop.wait()


async def test_a_failing_job_is_started_again_until_it_runs() -> None:
    job, stop = FailsThenRuns(failures=2), asyncio.Event()
    supervisor = Supervisor("the job", job, backoff=QUICK)
    task = asyncio.create_task(supervisor.run(stop))
    await asyncio.wait_for(job.running.wait(), timeout=5)
    assert supervisor.state is State.RUNNING and supervisor.can_send
    assert (job.starts, supervisor.restarts) == (3, 2)
    assert supervisor.problem == "start 2 failed"
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert supervisor.describe() == "stopped" and not supervisor.can_send


async def test_while_it_waits_to_start_again_it_says_why_and_when() -> None:
    job, stop = FailsThenRuns(failures=1), asyncio.Event()
    supervisor = Supervisor("the job", job, backoff=(30,))
    task = asyncio.create_task(supervisor.run(stop))
    await eventually(lambda: supervisor.state is State.RESTARTING, what="a restart planned")
    assert supervisor.describe() == "restarting in 30 s after: start 1 failed"
    assert supervisor.can_send  # it will start again: intake goes on
    stop.set()  # a stop during the wait ends it at once
    await asyncio.wait_for(task, timeout=5)
    assert supervisor.state is State.STOPPED and job.starts == 1 and supervisor.restarts == 0


async def test_it_gives_up_after_the_limit_of_failed_starts_in_a_row() -> None:
    job = FailsThenRuns(failures=10)
    supervisor = Supervisor("the job", job, backoff=QUICK, give_up_after=3)
    await asyncio.wait_for(supervisor.run(asyncio.Event()), timeout=5)
    assert supervisor.state is State.FAILED and not supervisor.can_send
    assert (job.starts, supervisor.restarts) == (3, 2)
    assert supervisor.describe() == "failed (not restarted again): start 3 failed"


async def test_a_run_that_lasted_starts_the_count_over() -> None:
    """With ``healthy_after`` 0 every run counts as healthy: the limit is never reached."""
    job = FailsThenRuns(failures=5)
    supervisor = Supervisor("the job", job, backoff=QUICK, give_up_after=2, healthy_after=0)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await asyncio.wait_for(job.running.wait(), timeout=5)
    assert supervisor.restarts == 5 and supervisor.state is State.RUNNING
    stop.set()
    await task


async def test_a_job_that_ends_by_itself_is_started_again() -> None:
    ends, stop = 0, asyncio.Event()

    async def job(stop_: asyncio.Event) -> None:
        nonlocal ends
        ends += 1
        if ends == 3:
            stop.set()

    supervisor = Supervisor("the job", job, backoff=QUICK)
    await asyncio.wait_for(supervisor.run(stop), timeout=5)
    assert ends == 3 and supervisor.problem == "the job ended by itself"
