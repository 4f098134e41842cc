"""Rate limits held in the database, so every `serve` process counts the same hits."""

from __future__ import annotations

import hashlib
import math
import time

from dispatcher.service.context import Service


async def over_limit(
    service: Service, scope: str, key: str, *, limit: int, window_seconds: int
) -> int | None:
    """Count one hit of ``key`` (an address, an email) in ``scope``: None while within
    ``limit`` per window, else the seconds until the window ends. A limit of 0 is off.

    Only a hash of scope and key is stored.
    """
    if limit <= 0:
        return None
    hits, left = await count_hit(service, scope, key, window_seconds=window_seconds)
    return None if hits <= limit else left


async def count_hit(
    service: Service, scope: str, key: str, *, window_seconds: int, count: bool = True
) -> tuple[int, int]:
    """Count one hit of ``key`` in ``scope`` (or only look, without ``count``): the
    window's hits so far (this one included) and the seconds until the window ends."""
    now = time.time()
    window = int(now // window_seconds)
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
    store = service.store
    hits = await (store.count_hit(digest, window) if count else store.hits(digest, window))
    return hits, max(1, math.ceil((window + 1) * window_seconds - now))
