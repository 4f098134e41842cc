"""What the web layer needs from the rest of the application, built once at start-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from dispatcher.campaigns import CampaignCatalog
from dispatcher.retry import RetryPolicy
from dispatcher.settings import Settings
from dispatcher.store import Store
from dispatcher.web.errors import ApiError
from dispatcher.web.metrics import Metrics
from dispatcher.web.security import Csrf, RateLimiter, presented_operator_token, token_matches


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    catalog: CampaignCatalog
    policy: RetryPolicy
    poll_seconds: float
    metrics: Metrics
    per_ip: RateLimiter
    per_email: RateLimiter
    csrf: Csrf = field(default_factory=Csrf)
    worker_task: asyncio.Task[object] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def operator_token(self) -> str | None:
        token = self.settings.operator_token
        return token.get_secret_value() if token and token.get_secret_value() else None

    def required_operator_token(self) -> str:
        """The configured operator token; 404 (operator features disabled) when there is none."""
        token = self.operator_token
        if token is None:
            raise ApiError(
                404, "operator endpoints and dashboard are disabled: set DISPATCHER_OPERATOR_TOKEN"
            )
        return token

    def is_operator(self, request: Request) -> bool:
        """Whether the request carries the operator token (header or dashboard cookie)."""
        return token_matches(presented_operator_token(request), self.required_operator_token())


def get_context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context
