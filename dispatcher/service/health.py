"""What health checks and metrics read: is the database there, how many deliveries where."""

from __future__ import annotations

import asyncio

from dispatcher.service.context import Service


async def database_problem(service: Service, *, within: float | None = None) -> str | None:
    """None when the database answers (within ``within`` seconds, if given); otherwise a
    short reason for a health check."""
    try:
        async with asyncio.timeout(within):
            await service.store.ping()
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        if isinstance(exc, TimeoutError) and within is not None:
            return f"not answering within {within:g} s"
        return f"unreachable: {type(exc).__name__}"
    return None


async def delivery_status_counts(service: Service) -> list[tuple[str, str, int]]:
    """(channel, status, count) over every campaign."""
    return await service.store.status_counts()
