"""What health checks and metrics read: is the database there, how many deliveries where."""

from __future__ import annotations

from dispatcher.service.context import Service


async def database_problem(service: Service) -> str | None:
    """None when the database answers; otherwise a short reason for a health check."""
    try:
        await service.store.ping()
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        return f"unreachable: {type(exc).__name__}"
    return None


async def delivery_status_counts(service: Service) -> list[tuple[str, str, int]]:
    """(channel, status, count) over every campaign."""
    return await service.store.status_counts()
