"""Which database errors pass by waiting, and which need someone to act.

Connection loss, a lock held too long, a file read-only for a while, a server restarting:
the worker waits and tries again, however long it takes. A schema the code does not
match (a table or column missing: not migrated, or migrated by a newer release) or an
error in our own code does not go away by waiting: the worker says so in one sentence
and stops, and whatever runs it (``serve``'s supervisor, systemd, Compose) decides
whether to start it again.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import (
    DataError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
    SQLAlchemyError,
)

# SQLite reports a missing table or column as an OperationalError, like a lock.
_SQLITE_SCHEMA = re.compile(r"no such (table|column): ([\w.]+)")


def lasting_problem(exc: BaseException) -> str | None:
    """None when waiting may help; otherwise one sentence saying what is wrong."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    missing = _SQLITE_SCHEMA.search(text)
    if missing or isinstance(exc, ProgrammingError):
        what = f"{missing.group(1)} {missing.group(2)}" if missing else first_line
        return (
            f"the database schema does not match this release ({what}): run "
            "`dispatcher migrate` with this release, or use the release that migrated it"
        )
    if isinstance(exc, (IntegrityError, DataError, NotSupportedError)):
        pass  # what we asked of the database is wrong: an error in our code
    elif isinstance(exc, (SQLAlchemyError, OSError, TimeoutError)):
        return None  # connection, lock, I/O, read-only, pool exhausted: wait and try again
    return f"an internal error stopped the worker ({type(exc).__name__}: {first_line})"
