"""The worker: claim due deliveries as send slots free up, send each, record each outcome.

Its parts, each with one job:

- the **claim loop** (``_poll``, in the shape of arq's poll iteration): each channel has a
  semaphore of send slots; once enough of them are free, one claim leases due deliveries
  for the free slots only, each is sent in its own task holding a slot, and when a claim
  comes back short the loop sleeps until a slot frees up, work is announced, or the next
  delivery falls due;
- the :class:`~dispatcher.worker.leases.LeaseKeeper`, which holds every lease from the
  claim until the outcome is written, renews them, and hands each send its lease's guard;
- the :class:`~dispatcher.worker.recorder.Recorder`, a batching buffer that writes the
  outcomes that arrived since its last transaction in the next one (a group commit), so a
  finished send is never held behind an unfinished one.

If the worker dies, its leases run out within ``lease_seconds`` and any worker rescues
them (see :mod:`dispatcher.outcomes` for what a rescued delivery means).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping

from dispatcher.backoff import retrying_database, stop_after_lasting
from dispatcher.channels.base import ChannelAdapter, DeliveryError, SendResult
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
from dispatcher.store import lasting_problem
from dispatcher.store.ports import WorkerStore
from dispatcher.worker.leases import LeaseKeeper
from dispatcher.worker.recorder import Recorder, WorkerStats, about
from dispatcher.worker.slots import Slots

log = get_logger(__name__)


class WorkerStopped(Exception):
    """The worker met a problem waiting does not mend (see ``store.lasting_problem``) and
    stopped after finishing its sends in flight; the message is one sentence."""


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs the claim → send → record loop against one store with one set of adapters.

    Sends in flight are limited per channel (``concurrency``); the store's claim keeps at
    most one fax in flight per fax number across all workers.
    """

    def __init__(
        self,
        store: WorkerStore,
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
        self._settings = settings
        self.poll_seconds = poll_seconds
        self.name = name or default_worker_name()
        self.on_attempt = on_attempt
        self.slots = Slots({c: n for c, n in concurrency.items() if c in adapters})
        self.leases = LeaseKeeper(
            lambda held: store.renew_leases(self.name, held, lease_seconds=self._lease),
            settings.lease_seconds,
        )
        self.recorder = Recorder(store, self.name, self.leases, settings, on_failure=self._fail)
        self.stats: WorkerStats = self.recorder.stats
        self._in_flight: dict[int, tuple[ClaimedDelivery, asyncio.Task[None]]] = {}
        # Set when a problem waiting does not mend stops the worker (run raises it).
        self.failure: str | None = None

    @property
    def settings(self) -> WorkerSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: WorkerSettings) -> None:
        """New settings reach the parts too (a test shortens the lease after building)."""
        self._settings = settings
        self.leases.seconds = settings.lease_seconds
        self.recorder.configure(settings)

    @property
    def in_flight(self) -> int:
        """Deliveries being sent or confirmed now (for metrics)."""
        return len(self._in_flight)

    @property
    def _lease(self) -> float:
        return self._settings.lease_seconds

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
        self.slots.ask_all()

    async def run(self, *, drain: bool = False, stop: asyncio.Event | None = None) -> WorkerStats:
        """Work until ``stop`` is set; sends in flight then finish and are recorded.

        With ``drain``, return as soon as nothing is queued, sending or awaiting confirmation.
        Cancelled (a second signal), sends in flight are cut off and recorded as
        "outcome unknown", due again at once. Raises WorkerStopped after a problem that
        waiting does not mend (the database's schema does not match, an error in our code).
        """
        stop = stop or asyncio.Event()
        recorder = asyncio.create_task(self.recorder.run(), name="recorder")
        helpers = [
            asyncio.create_task(self.leases.run(), name="lease-keeper"),
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
            self.recorder.close()
            await asyncio.shield(recorder)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if self.failure is not None:
            raise WorkerStopped(self.failure)
        return self.stats

    async def _claim_loop(self, drain: bool, stop: asyncio.Event) -> None:
        """Poll until stopped (or drained); a database that cannot be reached is tried
        again with growing waits while the sends in flight carry on."""
        # One retrying for the loop's life (each poll starts its count afresh), not one per poll.
        lasting = stop_after_lasting(lasting_problem, tries=1)
        retrying = retrying_database("could not claim deliveries", stop=stop, give_up=lasting)
        while not stop.is_set() and self.failure is None:
            try:
                async for attempt in retrying:
                    with attempt:
                        if stop.is_set():
                            return
                        done = await self._poll(drain)
            except Exception as exc:
                problem = lasting.problem or lasting_problem(exc) or repr(exc)
                log.error("the worker stops claiming", problem=problem)
                self._fail(problem)
                return
            if done:
                return

    async def _poll(self, drain: bool) -> bool:
        """One claim for the free slots and, when it came back short, a sleep; True once
        a drain is over."""
        free = self.slots.wanted(self.settings.batch_size)
        claimed = await self._claim(free) if free else []
        if free and len(claimed) == sum(free.values()):
            return False  # every free slot asked for was filled: more may be due at once
        if drain and not self._in_flight:
            await self.recorder.idle()
            # Channels that are off (live mode, no provider) have no slots: what waits
            # there is not this worker's to drain.
            if await self.store.pending_count(channels=self.slots.channels) == 0:
                return True
        if free:
            # The claim came back short: nothing more is due now. Look up when it will be
            # (not after every freed slot: that is a query per send).
            self.slots.due_at = await self.store.next_due_at(channels=self.slots.channels)
        await self.slots.sleep(self.settings.idle_seconds)
        return False

    async def _claim(self, free: Mapping[Channel, int]) -> list[ClaimedDelivery]:
        asked_at = time.monotonic()
        claimed = await self.store.claim_due_deliveries(
            self.name,
            limit=free,
            lease_seconds=self._lease,
            pacing=self.pacing,
            holding=self.leases.held(),
            fax_hours=self.fax_hours,
            providers={channel: adapter.provider for channel, adapter in self.adapters.items()},
        )
        await self.slots.took(free, claimed)
        self.leases.took((delivery.id for delivery in claimed), asked_at)
        if claimed:
            self.stats.claims += 1
            # One line a claim (each delivery's own line, at debug, would be as many lines as
            # sends again: its outcome's line says all of it once it is written).
            log.info("claimed", delivery_ids=[d.id for d in claimed], worker=self.name)
        for delivery in claimed:
            log.debug("claimed", **about(delivery), status=delivery.status.value, worker=self.name)
            task = asyncio.create_task(self._handle(delivery), name=f"delivery-{delivery.id}")
            self._in_flight[delivery.id] = (delivery, task)
        return claimed

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.wake()

    async def _handle(self, delivery: ClaimedDelivery) -> None:
        """Send (or confirm) one delivery in a slot of its channel, and hand its outcome
        to the recorder."""
        try:
            update = await self._outcome(delivery)
            if delivery.channel is Channel.FAX:
                hours = self.fax_hours.get((delivery.campaign_id, delivery.address))
                update = within_fax_hours(update, hours)
        finally:
            self.slots.release(delivery.channel)
        self.recorder.put(update)
        del self._in_flight[delivery.id]
        self.recorder.logged(delivery, update)
        again = update.next_attempt_at
        if again is not None:
            self.slots.due_by(again)  # a retry or a status poll this worker scheduled

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
                self.recorder.put(interrupted_update(delivery, now=utcnow()))
        self._in_flight.clear()

    async def _send(self, adapter: ChannelAdapter, delivery: ClaimedDelivery) -> DeliveryUpdate:
        started = time.perf_counter()
        lease = self.leases.guard(delivery.id)
        attempt = await send_with_fast_retries(adapter, delivery, self.policy, lease)
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
