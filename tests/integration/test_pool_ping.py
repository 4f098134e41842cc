"""Pooled PostgreSQL connections the server ended while they sat idle are replaced before
use: the next claim never meets one dead (the checkout ping, dispatcher.store.engine)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from dispatcher.models import Channel
from dispatcher.service import Service
from dispatcher.store import Store
from dispatcher.store.engine import PING_AFTER_IDLE_SECONDS
from tests.conftest import submitted
from tests.integration.conftest import appeal


async def test_pooled_connections_the_server_ended_are_replaced_before_a_claim(
    store: Store, service: Service
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("ends the pooled connections with pg_terminate_backend")
    await submitted(service, appeal(channels=["email"]))
    async with store.engine.connect() as conn:
        pooled = await conn.scalar(text("SELECT pg_backend_pid()"))
    # Back in the pool, every one of them is ended (as a restart or an idle timeout would).
    killer = await Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        async with killer.engine.begin() as conn:
            ended = await conn.scalar(
                text(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                    "pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()) AS ended"
                )
            )
    finally:
        await killer.close()
    assert ended and ended >= 1
    await asyncio.sleep(PING_AFTER_IDLE_SECONDS)  # idle long enough to be pinged

    claimed = await store.claim_due_deliveries("w", limit={Channel.EMAIL: 10}, lease_seconds=30)
    assert len(claimed) == 2  # one email to each official, on a fresh connection
    async with store.engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_backend_pid()")) != pooled
