"""Health check and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dispatcher.service.health import database_problem
from dispatcher.web.deps import ContextDep
from dispatcher.web.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "unhealthy"}},
)
async def healthz(context: ContextDep, response: Response) -> HealthOut:
    """Database reachable, and the in-process worker (if any) still running."""
    database = await database_problem(context.service) or "ok"
    task = context.worker_task
    if task is None:
        worker = "not in this process (--no-worker)"
    elif task.done():
        worker = "stopped"
    else:
        worker = "running"
    healthy = database == "ok" and worker != "stopped"
    if not healthy:
        response.status_code = 503
    return HealthOut(status="ok" if healthy else "unhealthy", database=database, worker=worker)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(context: ContextDep) -> Response:
    """Deliveries by channel and status, queue depth, attempt latency per channel."""
    return Response(
        await context.metrics.render(context.service),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
