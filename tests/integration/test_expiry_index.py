"""The claims' once-a-second expiry of overdue deliveries reads the expiry index
(migration 0014), not every pending delivery: with a million queued, a scan of them all
held each such claim for a fifth of a second."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from dispatcher.store import Store


async def test_the_expiry_in_a_claim_reads_the_expiry_index(store: Store) -> None:
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE deliveries") and "expires_at <=" in statement:
            seen.append((statement, params))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await store.claim_due_deliveries("w", limit=1, lease_seconds=30)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    assert len(seen) == 1, "a claim expires overdue deliveries (the first of each second)"
    statement, params = seen[0]
    async with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            # An empty table is cheapest to scan: ask which index the planner would take.
            await conn.exec_driver_sql("SET enable_seqscan = off")
            plan = (await conn.exec_driver_sql("EXPLAIN " + statement, params)).all()
        else:
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)).all()
    assert "ix_deliveries_expiry" in " ".join(str(row) for row in plan), plan
