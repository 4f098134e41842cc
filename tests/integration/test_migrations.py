"""Alembic's migrations build exactly the schema that store/schema.py declares.

Alembic's own autogenerate comparison (not our code) reads the migrated database back and
compares it with the SQLAlchemy metadata, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from dispatcher.store import Store
from dispatcher.store.schema import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_database_matches_the_declared_schema(store: Store) -> None:
    async with store.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []
