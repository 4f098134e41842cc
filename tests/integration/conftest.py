"""Helpers for the worker's tests: workers built from the test settings, a sample appeal."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dispatcher.retry import RetryPolicy
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.validation import AppealRequest
from dispatcher.worker import Worker
from tests.conftest import OPEN_CAMPAIGN, settings_for

MakeWorker = Callable[..., Worker]


@pytest.fixture
async def make_worker(service: Service, campaigns_dir: Path) -> AsyncIterator[MakeWorker]:
    workers: list[Worker] = []

    def make(sandbox: Sandbox, **retry: float) -> Worker:
        settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
        if retry:
            settings = settings.model_copy(
                update={"retry": settings.retry.model_copy(update=retry)}
            )
        policy = RetryPolicy.from_settings(settings.retry)
        worker = build_worker(settings, dataclasses.replace(service, policy=policy))
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await close_adapters(worker)


def appeal(**overrides: object) -> AppealRequest:
    values: dict[str, object] = {
        "campaign_id": OPEN_CAMPAIGN,
        "supporter_name": "Ana Lima",
        "supporter_email": "ana@example.org",
        "supporter_country": "Brazil",
    }
    values.update(overrides)
    return AppealRequest(**values)  # type: ignore[arg-type]
