"""The intake limits' hits, counted for many callers in one statement.

Concurrent hits share a transaction (group commit, as appeals do): each key's hits are
added at once, and each caller is told the count its own hit brought the window to, in
the order they arrived, exactly as if each had been counted alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.store.engine import upsert
from dispatcher.store.schema import rate_counts

Hit = tuple[str, int]  # (key, window)


async def count_hits(conn: AsyncConnection, hits: Sequence[Hit]) -> list[int]:
    """One more hit for each (key, window) of ``hits``; for each, the window's hits so far,
    that one included. A window that starts here forgets the key's older ones."""
    r = rate_counts
    added = Counter(hits)
    insert = upsert(r, conn.dialect.name).values(
        [{"key": key, "window": window, "hits": n} for (key, window), n in added.items()]
    )
    statement = insert.on_conflict_do_update(
        index_elements=[r.c.key, r.c.window], set_={"hits": r.c.hits + insert.excluded.hits}
    ).returning(r.c.key, r.c.window, r.c.hits)
    totals = {(row.key, row.window): int(row.hits) for row in await conn.execute(statement)}
    started = [(key, window) for (key, window), n in added.items() if totals[(key, window)] == n]
    if started:
        older = [and_(r.c.key == key, r.c.window < window) for key, window in started]
        await conn.execute(r.delete().where(or_(*older)))
    seen: Counter[Hit] = Counter()
    counts = []
    for hit in hits:
        seen[hit] += 1
        counts.append(totals[hit] - added[hit] + seen[hit])
    return counts
