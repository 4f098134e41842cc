"""The worker's parts on their own: the batching buffer its outcomes go through, and the
lease keeper that renews what it holds and tells each send whether its lease is safe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from dispatcher.worker.buffer import TimedBuffer
from dispatcher.worker.leases import LeaseKeeper
from tests.waiting import eventually


class Batches:
    """A flush that records each batch, and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def __call__(self, batch: list[int]) -> None:
        self.started.set()
        await self.gate.wait()
        self.batches.append(batch)


async def test_what_arrives_during_a_write_goes_in_the_next_batch_in_order() -> None:
    flush = Batches()
    buffer: TimedBuffer[int] = TimedBuffer(flush)
    runner = asyncio.create_task(buffer.run())
    flush.gate.clear()
    buffer.put(1)
    await asyncio.wait_for(flush.started.wait(), timeout=5)  # batch [1] is being written
    buffer.put(2)
    buffer.put(3)
    assert buffer.pending() == [1, 2, 3]
    flush.gate.set()
    await asyncio.wait_for(buffer.idle(), timeout=5)
    assert flush.batches == [[1], [2, 3]] and buffer.pending() == []
    buffer.close()
    await asyncio.wait_for(runner, timeout=5)


async def test_a_full_batch_goes_at_once_and_closing_writes_the_rest() -> None:
    flush = Batches()
    buffer: TimedBuffer[int] = TimedBuffer(flush, max_wait=600, max_size=3)
    runner = asyncio.create_task(buffer.run())
    for item in (1, 2, 3):
        buffer.put(item)
    # Ten minutes of gathering would time this out: a full batch does not wait for them.
    await eventually(lambda: flush.batches == [[1, 2, 3]], what="the full batch written")
    buffer.put(4)
    buffer.close()  # nor does closing
    await asyncio.wait_for(runner, timeout=5)
    assert flush.batches == [[1, 2, 3], [4]]


class Renewals:
    """A store's renewal: renews what it is told to, except ``lost`` (taken over), and
    fails ``fail`` times first."""

    def __init__(self, fail: int = 0) -> None:
        self.asked: list[list[int]] = []
        self.lost: set[int] = set()
        self.fail = fail

    async def __call__(self, ids: Sequence[int]) -> set[int]:
        self.asked.append(list(ids))
        if self.fail:
            self.fail -= 1
            raise ConnectionError("the database is unreachable")
        return set(ids) - self.lost


async def test_leases_are_renewed_until_written_and_a_lost_one_stops_its_send() -> None:
    renew = Renewals()
    keeper = LeaseKeeper(renew, lease_seconds=0.3)
    keeper.took([1, 2, 3], time.monotonic())
    guards = {i: keeper.guard(i) for i in (1, 2, 3)}
    assert all(guard.held() for guard in guards.values())
    keeper.released([3])  # its outcome is written: no longer renewed
    renew.lost.add(2)  # another worker took it over
    runner = asyncio.create_task(keeper.run())
    try:
        await eventually(lambda: len(renew.asked) >= 3, what="three rounds of renewals")
        assert all(asked == [1, 2] for asked in renew.asked)
        assert guards[1].held() and not guards[2].held()
        assert keeper.held() == [1, 2]
    finally:
        runner.cancel()


async def test_a_failed_renewal_is_tried_again_within_the_round() -> None:
    renew = Renewals(fail=2)
    keeper = LeaseKeeper(renew, lease_seconds=3.0)  # a round each second
    keeper.took([7], time.monotonic())
    runner = asyncio.create_task(keeper.run())
    try:
        # The tries after a failure wait 0.1 s, then 0.2 s: all within the first round.
        await eventually(lambda: len(renew.asked) == 3, what="two failures, then a renewal")
        assert keeper.guard(7).held()
    finally:
        runner.cancel()
