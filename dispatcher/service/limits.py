"""Intake rate limits held in the database, so every `serve` process counts the same hits."""

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
    now = time.time()
    window = int(now // window_seconds)
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
    hits = await service.store.count_hit(digest, window)
    if hits <= limit:
        return None
    return max(1, math.ceil((window + 1) * window_seconds - now))
