"""Prometheus metrics: deliveries by channel and status, queue depth, attempt latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dispatcher.models import Channel, DeliveryStatus
from dispatcher.service import Service
from dispatcher.service.health import delivery_status_counts
from dispatcher.supervisor import State, Supervisor


class Metrics:
    """A registry of its own per app, so tests and several apps never share counters."""

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

    def observe_attempt(self, channel: Channel, seconds: float) -> None:
        self.attempt_seconds.labels(channel=channel.value).observe(seconds)

    async def render(self, service: Service, supervisor: Supervisor | None) -> bytes:
        """Refresh the store-derived gauges (and the worker's) and render the text
        exposition format."""
        if supervisor is not None:
            for state in State:
                self.worker_state.labels(state=state.value).set(state is supervisor.state)
            self.worker_restarts.inc(supervisor.restarts - self._restarts_seen)
            self._restarts_seen = supervisor.restarts
        counts = {(c.value, s.value): 0 for c in Channel for s in DeliveryStatus}
        for channel, status, count in await delivery_status_counts(service):
            counts[(channel, status)] = count
        pending = {s.value for s in DeliveryStatus if not s.settled}
        for (channel, status), count in counts.items():
            self.deliveries.labels(channel=channel, status=status).set(count)
        self.queue_depth.set(sum(n for (_, s), n in counts.items() if s in pending))
        return generate_latest(self.registry)
