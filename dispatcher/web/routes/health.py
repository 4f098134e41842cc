"""Health check and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from dispatcher.service.health import database_problem
from dispatcher.supervisor import State
from dispatcher.web.deps import ContextDep
from dispatcher.web.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "unhealthy"}},
    response_model_exclude_none=True,
)
async def healthz(request: Request, context: ContextDep, response: Response) -> HealthOut:
    """Database reachable, and the in-process worker (if any) running or about to start
    again ("degraded"); 503 when the database is not answering or the worker's supervisor
    gave up. Only an operator (token or dashboard session) is told the details: they can
    quote the worker's failure, which is nobody else's business."""
    database = await database_problem(context.service) or "ok"
    supervisor = context.supervisor
    if supervisor is None:
        worker, restarts, working = "not in this process (--no-worker)", 0, True
    else:
        worker, restarts = supervisor.describe(), supervisor.restarts
        working = supervisor.can_send or context.stopping.is_set()
    status = "ok"
    if database != "ok" or not working:
        status = "unhealthy"
        response.status_code = 503
    elif supervisor is not None and supervisor.state is not State.RUNNING:
        status = "degraded"
    if not context.operator_tokens or await context.operator(request) is None:
        return HealthOut(status=status)
    return HealthOut(status=status, database=database, worker=worker, worker_restarts=restarts)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(context: ContextDep) -> Response:
    """Deliveries by channel and status, queue depth, attempt latency per channel."""
    return Response(
        await context.metrics.render(context.service, context.supervisor),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
