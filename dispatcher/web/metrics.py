"""Prometheus metrics: deliveries by channel and status, queue depth, attempt latency; for
``serve``, its in-process worker's state; for ``dispatcher worker``, that worker's counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dispatcher.models import Channel, DeliveryStatus
from dispatcher.service import Service
from dispatcher.service.health import delivery_status_counts
from dispatcher.supervisor import State, Supervisor
from dispatcher.worker import Worker


class QueueMetrics:
    """What every process that sends shows: the store's deliveries and queue depth (over
    all workers), and how long this process's attempts took. A registry of its own per
    instance, so tests and several apps never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Gauge(
            "dispatcher_deliveries",
            "Deliveries in the store by channel and status",
            ["channel", "status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "dispatcher_queue_depth",
            "Deliveries queued, sending or awaiting confirmation",
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "dispatcher_attempt_seconds",
            "Time one attempt took (with its fast retries), by channel",
            ["channel"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )

    def observe_attempt(self, channel: Channel, seconds: float) -> None:
        self.attempt_seconds.labels(channel=channel.value).observe(seconds)

    async def refresh_queue(self, service: Service) -> None:
        """Read the deliveries by channel and status from the store into the gauges."""
        counts = {(c.value, s.value): 0 for c in Channel for s in DeliveryStatus}
        for channel, status, count in await delivery_status_counts(service):
            counts[(channel, status)] = count
        pending = {s.value for s in DeliveryStatus if not s.settled}
        for (channel, status), count in counts.items():
            self.deliveries.labels(channel=channel, status=status).set(count)
        self.queue_depth.set(sum(n for (_, s), n in counts.items() if s in pending))


class Metrics(QueueMetrics):
    """``serve``'s metrics: the queue's, and its in-process worker's state and restarts."""

    def __init__(self) -> None:
        super().__init__()
        self.worker_state = Gauge(
            "dispatcher_worker_state",
            "1 for the in-process worker's current state (running, restarting, failed…)",
            ["state"],
            registry=self.registry,
        )
        self.worker_restarts = Counter(
            "dispatcher_worker_restarts",
            "Times the in-process worker was started again after it stopped on a problem",
            registry=self.registry,
        )
        self._restarts_seen = 0

    async def render(self, service: Service, supervisor: Supervisor | None) -> bytes:
        """Refresh the store-derived gauges (and the worker's) and render the text
        exposition format."""
        if supervisor is not None:
            for state in State:
                self.worker_state.labels(state=state.value).set(state is supervisor.state)
            self.worker_restarts.inc(supervisor.restarts - self._restarts_seen)
            self._restarts_seen = supervisor.restarts
        await self.refresh_queue(service)
        return generate_latest(self.registry)


class ClaimClock:
    """When the worker last claimed something: its claim count, looked at (every second
    while the metrics are served, and at each scrape), and the moment it was seen to move."""

    def __init__(self, worker: Worker, clock: Callable[[], float] = time.monotonic) -> None:
        self._worker = worker
        self._clock = clock
        self._claims = worker.stats.claims
        self._moved_at = clock()

    def look(self) -> None:
        if self._worker.stats.claims != self._claims:
            self._claims = self._worker.stats.claims
            self._moved_at = self._clock()

    def age(self) -> float:
        """Seconds since the worker last claimed a delivery (since it started, if never)."""
        self.look()
        return self._clock() - self._moved_at


class WorkerMetrics(QueueMetrics):
    """``dispatcher worker``'s metrics: the queue's, and this worker's own counts, read
    from the worker at each scrape."""

    def __init__(self) -> None:
        super().__init__()
        self.worker: Worker | None = None
        self.claim_clock: ClaimClock | None = None

    def watch(self, worker: Worker) -> None:
        """Show ``worker``'s counts from now on (once, for the worker this process runs)."""
        self.worker = worker
        self.claim_clock = ClaimClock(worker)
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """This worker's counts, as the registry asks for them (a Prometheus collector)."""
        if self.worker is None or self.claim_clock is None:
            return
        stats = self.worker.stats
        yield from (
            CounterMetricFamily(
                "dispatcher_worker_claims",
                "Claims by this worker that leased at least one delivery",
                value=stats.claims,
            ),
            CounterMetricFamily(
                "dispatcher_worker_commits",
                "Transactions this worker recorded outcomes in",
                value=stats.commits,
            ),
            CounterMetricFamily(
                "dispatcher_worker_handled",
                "Outcomes this worker recorded",
                value=stats.handled,
            ),
        )
        outcomes = CounterMetricFamily(
            "dispatcher_worker_outcomes",
            "Outcomes this worker recorded, by the status they left the delivery in",
            labels=["status"],
        )
        for status in DeliveryStatus:
            outcomes.add_metric([status.value], stats.outcomes.get(status.value, 0))
        yield outcomes
        yield GaugeMetricFamily(
            "dispatcher_worker_last_claim_age_seconds",
            "Seconds since this worker last claimed a delivery (since it started, if never)",
            value=self.claim_clock.age(),
        )
        yield GaugeMetricFamily(
            "dispatcher_worker_in_flight",
            "Deliveries this worker is sending or confirming now",
            value=self.worker.in_flight,
        )
        yield GaugeMetricFamily(
            "dispatcher_worker_stopped",
            "1 once this worker has stopped claiming on a problem waiting does not mend",
            value=int(self.worker.failure is not None),
        )

    async def render(self, service: Service) -> bytes:
        await self.refresh_queue(service)
        return generate_latest(self.registry)
