"""The ASGI application: JSON API, pages, webhooks; optionally the worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.channels.registry import sandboxed_channels
from dispatcher.logs import get_logger
from dispatcher.runtime import embedded_sandbox, open_service, supervised_worker
from dispatcher.settings import Settings
from dispatcher.web.deps import WebContext, refuse_control_characters
from dispatcher.web.error_pages import error_page
from dispatcher.web.errors import install_error_handlers
from dispatcher.web.language import Language
from dispatcher.web.metrics import Metrics
from dispatcher.web.routes import (
    appeals,
    dashboard,
    docs,
    embed,
    health,
    operator,
    pages,
    review,
    webhooks,
    x_accounts,
)
from dispatcher.web.routes.webhooks import MAX_CALLBACK_BYTES
from dispatcher.web.schemas import use_our_error_shape
from dispatcher.web.security import BodyLimit, Csrf, RateLimiter, SecurityHeaders

log = get_logger(__name__)
ROUTERS = (appeals, operator, review, health, webhooks, docs, pages, embed, dashboard, x_accounts)
STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings,
    *,
    run_worker: bool = True,
    announce: Callable[[str], None] = log.info,
) -> FastAPI:
    """The service. With ``run_worker`` the lifespan also runs a worker (and, for channels
    without provider settings, the embedded sandbox); the worker stops gracefully first.
    ConfigurationError when that sandbox needs a server that is not installed."""
    if run_worker:
        _require_sandbox_servers(settings)
    app = FastAPI(
        title="Appeal dispatcher",
        summary="One-step multi-channel appeals to officials, counted exactly.",
        version="0.1.0",
        lifespan=_lifespan(settings, run_worker, announce),
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_control_characters)],
    )
    # First, so that its catch-all for unexpected errors is the innermost middleware.
    install_error_handlers(app, page=error_page)
    # Inside SecurityHeaders, so a 413 raised while the app reads a body still gets the
    # security headers.
    app.add_middleware(
        BodyLimit,
        default=settings.intake.max_body_bytes,
        limits={"/webhooks/": MAX_CALLBACK_BYTES},
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(Language)
    app.add_middleware(NoStore)
    use_our_error_shape(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for area in ROUTERS:
        app.include_router(area.router)
    return app


def _lifespan(
    settings: Settings, run_worker: bool, announce: Callable[[str], None]
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The service's context while the app runs and, with ``run_worker``, the worker."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            service = await stack.enter_async_context(open_service(settings))
            context = WebContext(
                settings=settings,
                service=service,
                metrics=Metrics(),
                per_ip=RateLimiter(service, "ip", settings.intake.per_ip_per_minute, 60),
                per_email=RateLimiter(service, "email", settings.intake.per_email_per_hour, 3600),
                csrf=Csrf(settings.secret_key.get_secret_value() if settings.secret_key else None),
            )
            if settings.secret_key is None:
                announce(
                    "DISPATCHER_SECRET_KEY is not set: forms are signed with a key of this "
                    "process only (a restart or a second process rejects them)"
                )
            app.state.context = context
            if run_worker:
                await _start_worker(stack, settings, context, announce)
            try:
                yield
            finally:
                context.stopping.set()

    return lifespan


def _require_sandbox_servers(settings: Settings) -> None:
    """Before serving: the embedded sandbox's servers are installed (else one sentence
    saying what to install, rather than a failed start-up)."""
    if settings.sandbox.embedded:
        from dispatcher.sandbox import require_servers

        require_servers([channel.value for channel in sandboxed_channels(settings)])


async def _start_worker(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    context: WebContext,
    announce: Callable[[str], None],
) -> None:
    """The in-process worker under its supervisor (and the sandbox for unconfigured
    channels), stopped on exit."""
    supervisor = supervised_worker(
        settings, context.service, on_attempt=context.metrics.observe_attempt
    )
    await stack.enter_async_context(embedded_sandbox(settings, announce))
    context.supervisor = supervisor
    context.worker_task = asyncio.create_task(supervisor.run(context.stopping))
    stack.push_async_callback(_stop_worker, context)


async def _stop_worker(context: WebContext) -> None:
    """The stop event is set: let the sends in flight finish and be recorded, then collect
    the task."""
    context.stopping.set()
    task = context.worker_task
    if task is None:
        return
    try:
        await asyncio.wait_for(task, timeout=60)
    except TimeoutError:
        log.warning(
            "the worker did not finish its sends in flight in time; cancelling it",
            waited_seconds=60,
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class NoStore:
    """``Cache-Control: no-store`` on every answer that does not set its own (pages with a
    supporter's appeal or form token, operator pages, exports): neither a shared cache nor
    the browser keeps them. Static files stay cacheable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, answer)


def server_config(
    app: FastAPI, settings: Settings, *, host: str, port: int, log_level: str = "warning"
) -> uvicorn.Config:
    """How `serve` and the demo run the app under uvicorn."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # Through our handler (console or JSON lines, secrets blanked), not uvicorn's own.
        log_config=None,
        # Live streams (SSE) never end on their own: a few seconds, then they are closed.
        timeout_graceful_shutdown=5,
        # X-Forwarded-For / -Proto only from the proxies the settings name (none by
        # default): otherwise any client could choose its address for the rate limits.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
