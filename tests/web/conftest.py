"""Fixtures for the HTTP service: the app over ASGI, and a live uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from dispatcher.service.links import link_path
from dispatcher.settings import IntakeSettings, Settings
from dispatcher.web.app import create_app, server_config
from dispatcher.web.deps import WebContext
from tests.waiting import eventually

OPERATOR_TOKEN = "operator-secret-token"
# Loopback and closed: a sandbox fax gateway that calls it back reaches nothing outside.
CALLBACK_URL = "http://127.0.0.1:9/webhooks/fax"
CALLBACK_TOKEN = "callback-secret"


def web_settings(tmp_path: Path, campaigns_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'web.db'}",
        "campaigns_dir": campaigns_dir,
        "operator_token": OPERATOR_TOKEN,
        "intake": IntakeSettings(per_ip_per_minute=0, per_email_per_hour=0),
        "fax": {"callback_url": CALLBACK_URL, "callback_token": CALLBACK_TOKEN},
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            APP_OF[client] = app
            yield app, client


# The app behind each client: a test computes the links only an email would carry.
APP_OF: weakref.WeakKeyDictionary[httpx.AsyncClient, FastAPI] = weakref.WeakKeyDictionary()


def status_path(client: httpx.AsyncClient, appeal_id: str, purpose: str = "status") -> str:
    """The path of a link the supporter gets only by email (status, forget, confirm,
    not-me), for an appeal submitted through ``client``."""
    service = context_of(APP_OF[client]).service
    return link_path(service, purpose, appeal_id)  # type: ignore[arg-type]


async def delivery_ids(client: httpx.AsyncClient, appeal_id: str) -> list[int]:
    """An appeal's delivery ids, as its status link shows them."""
    found = await client.get("/api" + status_path(client, appeal_id).replace("/a/", "/appeals/", 1))
    assert found.status_code == 200, found.text
    return [d["id"] for d in found.json()["deliveries"]]


MakeClient = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def client(tmp_path: Path, campaigns_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (_, http):
        yield http


@pytest.fixture
def make_client(tmp_path: Path, campaigns_dir: Path) -> MakeClient:
    """A client for an app built with other settings (``make_client(operator_token=None)``)."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with running_app(web_settings(tmp_path, campaigns_dir, **overrides)) as (_, http):
            yield http

    return make


def context_of(app: FastAPI) -> WebContext:
    context: WebContext = app.state.context
    return context


@contextlib.asynccontextmanager
async def live_server(
    app: FastAPI, settings: Settings | None = None, port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a loopback port (ephemeral by default); yields the base
    URL. With ``settings``, configured as `dispatcher serve` runs it."""
    if settings is not None:
        config = server_config(app, settings, host="127.0.0.1", port=port)
    else:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()  # raises the start-up error
            raise AssertionError("uvicorn stopped before it started serving")
        return server.started

    await eventually(started, what="uvicorn serving", every=0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
