"""The worker: claim due deliveries, send them through their adapters, record what happened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dispatcher.channels.base import ChannelAdapter, DeliveryError, SendResult
from dispatcher.models import (
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    utcnow,
)
from dispatcher.outcomes import (
    confirmation_update,
    internal_error_update,
    interrupted_update,
    send_update,
)
from dispatcher.retry import RetryPolicy, send_with_fast_retries
from dispatcher.settings import WorkerSettings
from dispatcher.store import Store

log = logging.getLogger(__name__)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class WorkerStats:
    batches: int = 0
    handled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker:
    """Runs the claim → send → record loop against one store with one set of adapters.

    Sends in flight are limited per channel (``concurrency``); the store's claim
    keeps at most one fax in flight per fax number across all workers.
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
    ) -> None:
        self.store = store
        self.adapters = adapters
        self.policy = policy
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.name = name or default_worker_name()
        self.stats = WorkerStats()
        self.on_attempt = on_attempt
        self._limits = {channel: asyncio.Semaphore(n) for channel, n in concurrency.items()}

    async def run(self, *, drain: bool = False, stop: asyncio.Event | None = None) -> WorkerStats:
        """Work until ``stop`` is set (the current batch is finished first).

        With ``drain``, return as soon as nothing is queued, sending or awaiting confirmation.
        """
        stop = stop or asyncio.Event()
        while not stop.is_set():
            handled = await self.run_once()
            if handled:
                continue
            if drain and await self.store.pending_count() == 0:
                break
            await self._idle(stop)
        return self.stats

    async def _idle(self, stop: asyncio.Event) -> None:
        next_due = await self.store.next_due_at()
        wait = self.settings.idle_seconds
        if next_due is not None:
            wait = min(wait, max(0.05, (next_due - utcnow()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)

    async def run_once(self) -> int:
        """Claim one batch, handle it concurrently, record it in one transaction."""
        batch = await self.store.claim_due_deliveries(
            self.name, limit=self.settings.batch_size, lease_seconds=self.settings.lease_seconds
        )
        if not batch:
            return 0
        started: set[int] = set()
        tasks = [asyncio.create_task(self._handle(d, started)) for d in batch]
        try:
            updates = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon(batch, tasks, started))
            raise
        await self.store.record_outcomes(self.name, updates)
        self.stats.batches += 1
        self.stats.handled += len(updates)
        for update in updates:
            key = update.status.value
            self.stats.outcomes[key] = self.stats.outcomes.get(key, 0) + 1
        return len(updates)

    async def _abandon(
        self,
        batch: list[ClaimedDelivery],
        tasks: list[asyncio.Task[DeliveryUpdate]],
        started: set[int],
    ) -> None:
        """Forced shutdown: record what finished, mark sends cut off midway as "outcome
        unknown" (due again at once), and hand back untouched deliveries that never started."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        updates: list[DeliveryUpdate] = []
        untouched: list[int] = []
        for task, delivery in zip(tasks, batch, strict=True):
            if task.done() and not task.cancelled():
                updates.append(task.result())
            elif delivery.id in started:
                updates.append(interrupted_update(delivery, now=utcnow()))
            else:
                untouched.append(delivery.id)
        await self.store.record_outcomes(self.name, updates)
        await self.store.release(self.name, untouched)

    async def _handle(self, delivery: ClaimedDelivery, started: set[int]) -> DeliveryUpdate:
        adapter = self.adapters[delivery.channel]
        async with self._limits[delivery.channel]:
            started.add(delivery.id)
            try:
                if delivery.status is DeliveryStatus.AWAITING_CONFIRMATION:
                    return await self._confirm(adapter, delivery)
                return await self._send(adapter, delivery)
            except Exception as exc:
                log.exception("unexpected error handling delivery %s", delivery.id)
                return internal_error_update(self.policy, delivery, exc, now=utcnow())

    async def _send(self, adapter: ChannelAdapter, delivery: ClaimedDelivery) -> DeliveryUpdate:
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
            self.policy, delivery, verdict, now=utcnow(), poll_seconds=self.poll_seconds
        )
