"""Engine creation and schema migration; the SQLite/PostgreSQL differences of connecting."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, event, inspect, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from dispatcher.settings import ConfigurationError

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (a test checks they agree). Knowing it lets
# every command skip loading Alembic when the schema is already current.
HEAD_REVISION = "0014"
# Any constant works; it only has to be the same in every process sharing the database.
_MIGRATION_LOCK_KEY = 7_261_021
# Execution option marking a connection that will write (see _configure_sqlite).
WRITE_OPTION = "dispatcher_writes"


class DatabaseUrlError(ConfigurationError):
    """The database URL names a driver we do not support."""


class DatabaseUnavailable(ConfigurationError):
    """The database could not be reached (or refused us) when the store opened."""


def unreachable(engine: AsyncEngine, exc: BaseException) -> DatabaseUnavailable:
    """One sentence: which database (no password), and what it answered."""
    where = engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] or type(exc).__name__
    return DatabaseUnavailable(
        f"cannot reach the database at {where}: {reason} (is it running, and is "
        "DISPATCHER_DATABASE_URL right?)"
    )


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``).

    SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``, so a
    writer waits for the write lock up front (busy timeout) instead of failing midway.
    """
    parsed = make_url(url)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername == "sqlite+aiosqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql+asyncpg":
        try:
            import asyncpg  # noqa: F401  (only to know the driver is there)
        except ModuleNotFoundError:
            raise DatabaseUrlError(
                "the database URL is PostgreSQL but its driver is not installed; "
                "install it with: pip install 'appeal-dispatcher[postgres]'"
            ) from None
        engine = create_async_engine(
            parsed,
            pool_size=10,
            max_overflow=10,
            # Bounded waits: connecting, and any one statement (a server that stopped
            # answering without closing the connection would otherwise hold a worker).
            connect_args={"timeout": 10, "command_timeout": 300},
        )
        _ping_on_checkout(engine)
        return engine
    raise DatabaseUrlError(
        f"database URL driver {parsed.drivername!r} is not supported; "
        "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
    )


IN_USE_SUFFIX = ".in-use"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: PostgreSQL, or SQLite in memory)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def mark_in_use(url: str) -> int | None:
    """While the returned descriptor is open, this process holds a shared lock on a file
    beside a SQLite database (``<db>.in-use``): a tool that would delete the database
    (``dispatcher demo``) can see it is in use. None for PostgreSQL or in memory."""
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        fd = os.open(f"{path}{IN_USE_SUFFIX}", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a folder we may not write to: the store works, unmarked
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def in_use_elsewhere(path: Path) -> bool:
    """Whether another process has the SQLite database ``path`` open as a store."""
    try:
        fd = os.open(f"{path}{IN_USE_SUFFIX}", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def upsert(table: Table, dialect: str) -> Any:
    """``INSERT`` with ``ON CONFLICT`` clauses, in the given dialect (SQLite or PostgreSQL)."""
    if dialect == "sqlite":
        return sqlite_insert(table)
    return pg_insert(table)


# A pooled connection idle this long is pinged before use; one used within it is not.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """A connection the server ended while it sat idle in the pool is replaced before use,
    not found dead halfway through a claim: a checkout of one idle for a second or more is
    pinged first.

    SQLAlchemy's own ``pool_pre_ping`` pings every checkout, with three round trips on
    asyncpg (BEGIN, the ping, ROLLBACK); a busy worker checks a connection out for each
    claim and each group commit, milliseconds after it went back. This is the ping alone,
    and only after a pause: a connection lost within the second is met by the claim's (or
    the write's) retrying, as one lost mid-transaction always is, and nothing is claimed
    or written twice (the transaction rolled back).
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # just opened, or used a moment ago
        try:
            await_only(dbapi_connection.driver_connection.fetchrow(";"))
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"the pooled connection is gone: {exc!r}") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk (the WAL synced) before it is answered, so an appeal
        # that got its 202 survives a power cut, not only a crash of the process. Group
        # commit shares that one sync among the appeals that arrive together.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock up front (a deferred transaction that later writes can
        # fail with SQLITE_BUSY in WAL mode instead of waiting); readers don't block anyone.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(connection: Connection) -> None:
    if _current_revision(connection) == HEAD_REVISION:
        return
    from alembic import command  # only when there is something to migrate: it is slow to load
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to run from many processes at once."""
    async with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_upgrade)
