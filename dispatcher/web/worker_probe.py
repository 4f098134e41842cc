"""``dispatcher worker``'s own small HTTP server: ``/metrics`` (Prometheus) and ``/healthz``
on DISPATCHER_WORKER__METRICS_PORT, for as long as the worker runs. Off unless the port
is set; it listens on DISPATCHER_WORKER__METRICS_HOST (this host only, by default)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatcher.service import Service
from dispatcher.service.health import database_problem
from dispatcher.settings import ConfigurationError, Settings
from dispatcher.web.metrics import WorkerMetrics
from dispatcher.worker import Worker

# Longer than this without an answer, the database counts as unreachable (a container
# health check gives up at 5 s).
DATABASE_WAIT_SECONDS = 3.0


@dataclass
class WorkerProbe:
    """What the two routes read: the worker (its counts, and why it stopped, if it did),
    its service, and the stop it was asked to make."""

    worker: Worker
    service: Service
    metrics: WorkerMetrics
    stop: asyncio.Event

    async def health(self) -> tuple[int, dict[str, object]]:
        """200 and "ok" while the worker runs and its database answers; else 503 and why."""
        worker = self.worker
        about: dict[str, object] = {"worker": worker.name, "handled": worker.stats.handled}
        if worker.failure is not None:
            reason = f"the worker stopped: {worker.failure}"
            return 503, {"status": "unhealthy", "reason": reason, **about}
        problem = await database_problem(self.service, within=DATABASE_WAIT_SECONDS)
        if problem is not None:
            reason = f"the database is {problem}"
            return 503, {"status": "unhealthy", "reason": reason, **about}
        if self.stop.is_set():
            reason = "asked to stop: finishing the sends in flight, claiming nothing more"
            return 503, {"status": "stopping", "reason": reason, **about}
        return 200, {"status": "ok", "database": "ok", **about}


def probe_app(probe: WorkerProbe) -> Starlette:
    async def healthz(request: Request) -> Response:
        status, body = await probe.health()
        return JSONResponse(body, status_code=status)

    async def metrics(request: Request) -> Response:
        return Response(
            await probe.metrics.render(probe.service),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


class _Server(uvicorn.Server):
    """uvicorn inside the worker's process: the worker's own SIGINT/SIGTERM handling stays
    in charge (uvicorn's would replace it, and raise the signal again once it stops)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    """The probe's listening socket; ConfigurationError when the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot serve the worker's metrics on {host}:{port} ({exc.strerror}): set "
            "DISPATCHER_WORKER__METRICS_PORT to a free port, or unset it to serve none"
        ) from None
    return sock


@contextlib.asynccontextmanager
async def serving_probe(
    settings: Settings,
    probe: WorkerProbe,
    announce: Callable[[str], None],
) -> AsyncIterator[None]:
    """Serve /metrics and /healthz for ``probe`` while the block runs (nothing when
    DISPATCHER_WORKER__METRICS_PORT is unset)."""
    port = settings.worker.metrics_port
    if port is None:
        yield
        return
    host = settings.worker.metrics_host
    sock = _listen(host, port)
    config = uvicorn.Config(
        probe_app(probe), log_config=None, log_level="warning", access_log=False, lifespan="off"
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="worker-probe")
    watching = asyncio.create_task(_watch_claims(probe.metrics), name="claim-clock")
    try:
        while not server.started:
            if serving.done():
                serving.result()  # it could not start: say why
            await asyncio.sleep(0.02)
        shown = f"[{host}]" if ":" in host else host
        announce(f"worker metrics on http://{shown}:{port}/metrics, health on /healthz")
        yield
    finally:
        watching.cancel()
        server.should_exit = True
        try:
            await asyncio.gather(serving, watching, return_exceptions=True)
        finally:
            sock.close()


async def _watch_claims(metrics: WorkerMetrics) -> None:
    """Look at the worker's claim count every second: the last claim's age is then never
    more than a second out, however rarely Prometheus scrapes."""
    while True:
        if metrics.claim_clock is not None:
            metrics.claim_clock.look()
        await asyncio.sleep(1)
