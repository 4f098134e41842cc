"""The worker: claim due deliveries as send slots free up, send each, record each outcome.

Nothing waits for anything but itself. Each channel has a number of send slots; whenever
one frees up, the claim loop leases due deliveries for the free slots only, and each one
is sent in its own task. An outcome is handed to the recorder the moment it is known;
the recorder writes whatever has arrived since its last transaction in the next one
(a group commit), so a finished send is never held behind an unfinished one. While the
worker holds leases, a heartbeat renews them; if it dies, they run out within
``lease_seconds`` and any worker rescues them. A worker that has not managed to renew
a lease for two thirds of its length does not start sending that delivery (another
worker may be about to take it over): it hands it back, and the adapters check the same
right before anything goes on the wire (after waiting for a connection, rendering a fax).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dispatcher.channels.base import ChannelAdapter, DeliveryError, SendResult, lease_held
from dispatcher.fax_hours import FaxHours
from dispatcher.logs import get_logger
from dispatcher.models import (
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    PacingRules,
    QueueEvent,
    utcnow,
)
from dispatcher.outcomes import (
    confirmation_update,
    internal_error_update,
    interrupted_update,
    send_update,
    within_fax_hours,
)
from dispatcher.retry import RetryPolicy, send_with_fast_retries
from dispatcher.settings import WorkerSettings
from dispatcher.store import Store, lasting_problem

log = get_logger(__name__)

# Waits between tries to claim or record while the database is unreachable.
_RETRY_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# Tries to record outcomes through an error that waiting does not mend, before giving up.
_LASTING_TRIES = 3


class WorkerStopped(Exception):
    """The worker met a problem waiting does not mend (see ``store.lasting_problem``) and
    stopped after finishing its sends in flight; the message is one sentence."""


def retry_wait(failures: int) -> float:
    """How long to wait after ``failures`` failed tries in a row (then 5 s, for ever)."""
    return _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]


def _about(delivery: ClaimedDelivery) -> dict[str, object]:
    """The fields every log line about a delivery carries."""
    return {
        "delivery_id": delivery.id,
        "appeal_id": delivery.appeal_id,
        "channel": delivery.channel.value,
        "attempt": delivery.attempts,
    }


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class WorkerStats:
    claims: int = 0
    commits: int = 0
    handled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, updates: Sequence[DeliveryUpdate]) -> None:
        self.commits += 1
        self.handled += len(updates)
        for update in updates:
            key = update.status.value
            self.outcomes[key] = self.outcomes.get(key, 0) + 1


class OutcomeRecorder:
    """Writes outcomes as they arrive: everything queued since the last write (and in the
    ``gather_seconds`` after the first of them) goes into the next transaction. A write
    that fails is tried again (with growing waits) and keeps its outcomes; nothing is
    dropped."""

    def __init__(
        self,
        store: Store,
        worker: str,
        stats: WorkerStats,
        gather_seconds: float = 0.0,
        on_failure: Callable[[str], None] = lambda _problem: None,
    ) -> None:
        self._store = store
        self._on_failure = on_failure
        self._gather_seconds = gather_seconds
        self._worker = worker
        self._stats = stats
        self._waiting: list[DeliveryUpdate] = []
        self._writing: list[DeliveryUpdate] = []
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    def held(self) -> list[int]:
        """Deliveries whose outcome is not written yet (their leases must not run out)."""
        return [u.delivery_id for u in (*self._writing, *self._waiting)]

    def put(self, update: DeliveryUpdate) -> None:
        self._waiting.append(update)
        self._idle.clear()
        self._arrived.set()

    async def idle(self) -> None:
        """Wait until everything handed in so far is written."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._arrived.wait()
            if self._gather_seconds and not self._closing:
                await asyncio.sleep(self._gather_seconds)  # let a few more finish
            self._arrived.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                self._writing = batch
                await self._write(batch)
                self._writing = []
            if not self._waiting:
                self._idle.set()
                if self._closing:
                    return

    def _give_up(self, batch: list[DeliveryUpdate], problem: str) -> None:
        log.error(
            "gave up recording outcomes; their leases run out and the next worker to take "
            "them checks or resends them, marked possible duplicates",
            delivery_ids=[u.delivery_id for u in batch],
            problem=problem,
        )
        self._on_failure(problem)

    def close(self) -> None:
        """Stop after writing what is queued."""
        self._closing = True
        self._arrived.set()

    async def _write(self, batch: list[DeliveryUpdate]) -> None:
        failures = lasting = 0
        while True:
            try:
                await self._store.record_outcomes(self._worker, batch)
            except Exception as exc:
                problem = lasting_problem(exc)
                lasting = lasting + 1 if problem else 0
                if problem and lasting >= _LASTING_TRIES:
                    self._give_up(batch, problem)
                    return
                wait = retry_wait(failures)
                failures += 1
                log.warning(
                    "could not record outcomes; trying again",
                    outcomes=len(batch),
                    error=repr(exc),
                    retry_in_seconds=wait,
                )
                await asyncio.sleep(wait)
                continue
            self._stats.count(batch)
            return


class Worker:
    """Runs the claim → send → record loop against one store with one set of adapters.

    Sends in flight are limited per channel (``concurrency``); the store's claim keeps at
    most one fax in flight per fax number across all workers.
    """

    def __init__(
        self,
        store: Store,
        adapters: Mapping[Channel, ChannelAdapter],
        *,
        policy: RetryPolicy,
        settings: WorkerSettings,
        concurrency: Mapping[Channel, int],
        poll_seconds: float,
        name: str | None = None,
        on_attempt: Callable[[Channel, float], None] | None = None,
        pacing: PacingRules | None = None,
        fax_hours: Mapping[tuple[str, str], FaxHours] | None = None,
        confirm_timeout: float | None = None,
    ) -> None:
        self.store = store
        # Each fax line's hours, (campaign id, number) → window: the claim holds a fax
        # while its line is closed, and a retry due then waits for the opening.
        self.fax_hours = fax_hours or {}
        # Seconds from a fax's acceptance to the last look-up of its status.
        self.confirm_timeout = confirm_timeout
        self.pacing = pacing
        self.adapters = adapters
        self.policy = policy
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.name = name or default_worker_name()
        self.stats = WorkerStats()
        self.on_attempt = on_attempt
        self._slots = {c: n for c, n in concurrency.items() if c in adapters}
        self._busy: Counter[Channel] = Counter()
        self._in_flight: dict[int, tuple[ClaimedDelivery, asyncio.Task[None]]] = {}
        # Until when (monotonic) each delivery not yet sent is surely still leased here.
        self._leased_until: dict[int, float] = {}
        self._wake = asyncio.Event()
        # Channels worth a claim: one of their slots freed up, or work was announced.
        self._ask: set[Channel] = set(self._slots)
        # When the next delivery falls due, as last looked up (or scheduled by this worker).
        self._due_at: dt.datetime | None = None
        # Set when a problem waiting does not mend stops the worker (run raises it).
        self.failure: str | None = None
        self._recorder = OutcomeRecorder(
            store, self.name, self.stats, settings.record_gather_seconds, self._fail
        )

    def _fail(self, problem: str) -> None:
        """Claim nothing more; ``run`` ends once the sends in flight are done, and raises."""
        if self.failure is None:
            self.failure = problem
        self.wake()

    def _heard(self, event: QueueEvent) -> None:
        if event is QueueEvent.QUEUED:
            self.wake()

    def wake(self) -> None:
        """Look for due deliveries of every channel now (new work was announced)."""
        self._ask.update(self._slots)
        self._wake.set()

    async def run(self, *, drain: bool = False, stop: asyncio.Event | None = None) -> WorkerStats:
        """Work until ``stop`` is set; sends in flight then finish and are recorded.

        With ``drain``, return as soon as nothing is queued, sending or awaiting confirmation.
        Cancelled (a second signal), sends in flight are cut off and recorded as
        "outcome unknown", due again at once. Raises WorkerStopped after a problem that
        waiting does not mend (the database's schema does not match, an error in our code).
        """
        stop = stop or asyncio.Event()
        helpers = [
            asyncio.create_task(self._recorder.run(), name="recorder"),
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
            asyncio.create_task(self._wake_on(stop), name="stop-watch"),
        ]
        try:
            async with self.store.events(self._heard):
                await self._claim_loop(drain, stop)
                while self._in_flight:
                    await asyncio.wait([task for _, task in self._in_flight.values()])
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon())
            raise
        finally:
            self._recorder.close()
            await asyncio.shield(helpers[0])
            for helper in helpers[1:]:
                helper.cancel()
            await asyncio.gather(*helpers[1:], return_exceptions=True)
        if self.failure is not None:
            raise WorkerStopped(self.failure)
        return self.stats

    async def _claim_loop(self, drain: bool, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set() and self.failure is None:
            self._wake.clear()
            try:
                done = await self._claim_step(drain)
            except Exception as exc:
                if problem := lasting_problem(exc):
                    log.error("the worker stops claiming", problem=problem)
                    self._fail(problem)
                    return
                # The database is unreachable or refused (a dropped connection, a lock held
                # too long): sends in flight carry on, and the claim is tried again.
                wait = retry_wait(failures)
                failures += 1
                log.warning(
                    "could not claim deliveries; trying again",
                    error=repr(exc),
                    retry_in_seconds=wait,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                continue
            failures = 0
            if done:
                return

    async def _claim_step(self, drain: bool) -> bool:
        """One claim and, when it came back short, a sleep; True once a drain is over."""
        free = {c: n for c, n in self._free_slots().items() if c in self._ask}
        claimed = await self._claim(free) if free else []
        if free and len(claimed) == sum(free.values()):
            return False  # every free slot asked for was filled: more may be due at once
        if drain and not self._in_flight:
            await self._recorder.idle()
            # Channels that are off (live mode, no provider) have no slots: what waits
            # there is not this worker's to drain.
            if await self.store.pending_count(channels=list(self._slots)) == 0:
                return True
        if free:
            # The claim came back short: nothing more is due now. Look up when it will be
            # (not after every freed slot: that is a query per send).
            self._due_at = await self.store.next_due_at(channels=list(self._slots))
        await self._sleep()
        return False

    def _free_slots(self) -> dict[Channel, int]:
        """Free slots per channel, once a third of them are free (or the channel is idle):
        one claim then fills several, instead of one claim per finished send."""
        free = {}
        for channel, slots in self._slots.items():
            n = slots - self._busy[channel]
            if n >= max(1, slots // 3) or (n > 0 and self._busy[channel] == 0):
                free[channel] = min(self.settings.batch_size, n)
        return free

    async def _sleep(self) -> None:
        """Until a slot frees up, work is announced or ``stop``, or at most until the next
        delivery falls due as last looked up or scheduled here (``idle_seconds`` at most):
        then every channel is asked again."""
        wait = self.settings.idle_seconds
        if self._due_at is not None:
            wait = min(wait, max(0.05, (self._due_at - utcnow()).total_seconds()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
        except TimeoutError:
            self._ask.update(self._slots)

    async def _claim(self, free: Mapping[Channel, int]) -> list[ClaimedDelivery]:
        asked_at = time.monotonic()
        claimed = await self.store.claim_due_deliveries(
            self.name,
            limit=free,
            lease_seconds=self.settings.lease_seconds,
            pacing=self.pacing,
            holding=[*self._in_flight, *self._recorder.held()],
            fax_hours=self.fax_hours,
            providers={channel: adapter.provider for channel, adapter in self.adapters.items()},
        )
        got = Counter(delivery.channel for delivery in claimed)
        for channel, asked in free.items():
            if got[channel] < asked:
                self._ask.discard(channel)  # nothing more due there: ask again when woken
        if claimed:
            self.stats.claims += 1
        for delivery in claimed:
            log.info("claimed", **_about(delivery), status=delivery.status.value, worker=self.name)
            self._leased_until[delivery.id] = asked_at + self.settings.lease_seconds
            self._busy[delivery.channel] += 1
            task = asyncio.create_task(self._handle(delivery), name=f"delivery-{delivery.id}")
            self._in_flight[delivery.id] = (delivery, task)
        return claimed

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.wake()

    async def _heartbeat(self) -> None:
        """Every third of ``lease_seconds``, renew the leases on what this worker holds."""
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = [*self._in_flight, *self._recorder.held()]
                asked_at = time.monotonic()
                renewed = await self.store.renew_leases(
                    self.name, held, lease_seconds=self.settings.lease_seconds
                )
                for delivery_id in self._leased_until:
                    if delivery_id in renewed:
                        self._leased_until[delivery_id] = asked_at + self.settings.lease_seconds
                    elif delivery_id in held:
                        self._leased_until[delivery_id] = 0.0  # taken over, or ended
            except Exception as exc:
                log.warning(
                    "could not renew leases; trying again",
                    error=repr(exc),
                    retry_in_seconds=interval,
                )

    def _still_leased(self, delivery_id: int) -> bool:
        """True while at least a third of the lease surely remains: safe to start a send."""
        margin = self.settings.lease_seconds / 3
        return time.monotonic() < self._leased_until.get(delivery_id, 0.0) - margin

    async def _handle(self, delivery: ClaimedDelivery) -> None:
        try:
            update = await self._outcome(delivery)
            if delivery.channel is Channel.FAX:
                hours = self.fax_hours.get((delivery.campaign_id, delivery.address))
                update = within_fax_hours(update, hours)
        finally:
            self._leased_until.pop(delivery.id, None)
            self._busy[delivery.channel] -= 1
            self._ask.add(delivery.channel)
            self._wake.set()
        self._recorder.put(update)
        del self._in_flight[delivery.id]
        log.info(
            "outcome",
            **_about(delivery),
            outcome=update.attempt_outcome.value if update.attempt_outcome else None,
            status=update.status.value,
            error=update.error.message if update.error else None,
            next_attempt_at=update.next_attempt_at.isoformat() if update.next_attempt_at else None,
        )
        again = update.next_attempt_at
        if again is not None and (self._due_at is None or again < self._due_at):
            self._due_at = again  # a retry or a status poll this worker scheduled

    async def _outcome(self, delivery: ClaimedDelivery) -> DeliveryUpdate:
        adapter = self.adapters[delivery.channel]
        try:
            if delivery.status is DeliveryStatus.AWAITING_CONFIRMATION:
                return await self._confirm(adapter, delivery)
            return await self._send(adapter, delivery)
        except Exception as exc:
            log.exception("unexpected error handling a delivery", delivery_id=delivery.id)
            return internal_error_update(self.policy, delivery, exc, now=utcnow())

    async def _abandon(self) -> None:
        """Forced shutdown: sends cut off midway are recorded as "outcome unknown" (due again
        at once); what finished was handed to the recorder already."""
        held = list(self._in_flight.values())
        for _, task in held:
            task.cancel()
        await asyncio.gather(*(task for _, task in held), return_exceptions=True)
        for delivery, task in held:
            if task.cancelled():
                self._recorder.put(interrupted_update(delivery, now=utcnow()))
        self._in_flight.clear()

    async def _send(self, adapter: ChannelAdapter, delivery: ClaimedDelivery) -> DeliveryUpdate:
        # This runs in the delivery's own task: the adapters see this delivery's lease.
        lease_held.set(functools.partial(self._still_leased, delivery.id))
        started = time.perf_counter()
        attempt = await send_with_fast_retries(adapter, delivery, self.policy)
        if self.on_attempt is not None:
            self.on_attempt(delivery.channel, time.perf_counter() - started)
        return send_update(
            self.policy, delivery, attempt, now=utcnow(), poll_seconds=self.poll_seconds
        )

    async def _confirm(self, adapter: ChannelAdapter, delivery: ClaimedDelivery) -> DeliveryUpdate:
        verdict: SendResult | DeliveryError
        try:
            verdict = await adapter.check(delivery)
        except DeliveryError as exc:
            verdict = exc
        return confirmation_update(
            self.policy,
            delivery,
            verdict,
            now=utcnow(),
            poll_seconds=self.poll_seconds,
            confirm_timeout=self.confirm_timeout,
        )
