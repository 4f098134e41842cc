"""Writing outcomes: a batching buffer whose flush records a batch in one transaction.

A write that fails is tried again with growing waits and keeps its outcomes; nothing is
dropped while waiting may help. After three failures in a row that waiting does not mend
(a schema that does not match, an error in our code) it gives up on that batch: their
leases run out, and the next worker to take them checks or resends them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dispatcher.backoff import retrying_database, stop_after_lasting
from dispatcher.logs import get_logger
from dispatcher.models import ClaimedDelivery, DeliveryUpdate
from dispatcher.settings import WorkerSettings
from dispatcher.store import lasting_problem
from dispatcher.store.ports import WorkerStore
from dispatcher.worker.buffer import TimedBuffer
from dispatcher.worker.leases import LeaseKeeper

log = get_logger(__name__)

# Tries to record outcomes through an error that waiting does not mend, before giving up.
LASTING_TRIES = 3


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


def about(delivery: ClaimedDelivery) -> dict[str, object]:
    """The fields every log line about a delivery carries."""
    return {
        "delivery_id": delivery.id,
        "appeal_id": delivery.appeal_id,
        "channel": delivery.channel.value,
        "attempt": delivery.attempts,
    }


class Recorder:
    def __init__(
        self,
        store: WorkerStore,
        worker: str,
        leases: LeaseKeeper,
        settings: WorkerSettings,
        on_failure: Callable[[str], None],
    ) -> None:
        self._store = store
        self._worker = worker
        self._leases = leases
        self._on_failure = on_failure
        self.stats = WorkerStats()
        self._buffer = TimedBuffer(
            self._write, max_wait=settings.record_gather_seconds, max_size=settings.batch_size
        )
        self.put = self._buffer.put
        self.idle = self._buffer.idle
        self.run = self._buffer.run
        self.close = self._buffer.close

    def configure(self, settings: WorkerSettings) -> None:
        self._buffer.max_wait = settings.record_gather_seconds
        self._buffer.max_size = settings.batch_size

    def logged(self, delivery: ClaimedDelivery, update: DeliveryUpdate) -> None:
        log.info(
            "outcome",
            **about(delivery),
            outcome=update.attempt_outcome.value if update.attempt_outcome else None,
            status=update.status.value,
            error=update.error.message if update.error else None,
            next_attempt_at=update.next_attempt_at.isoformat() if update.next_attempt_at else None,
        )

    async def _write(self, batch: list[DeliveryUpdate]) -> None:
        lasting = stop_after_lasting(lasting_problem, tries=LASTING_TRIES)
        try:
            async for attempt in retrying_database(
                "could not record outcomes", give_up=lasting, outcomes=len(batch)
            ):
                with attempt:
                    await self._store.record_outcomes(self._worker, batch)
        except Exception as exc:
            self._give_up(batch, lasting.problem or repr(exc))
        else:
            self.stats.count(batch)
        self._leases.released(update.delivery_id for update in batch)

    def _give_up(self, batch: list[DeliveryUpdate], problem: str) -> None:
        log.error(
            "gave up recording outcomes; their leases run out and the next worker to take "
            "them checks or resends them, marked possible duplicates",
            delivery_ids=[u.delivery_id for u in batch],
            problem=problem,
        )
        self._on_failure(problem)
