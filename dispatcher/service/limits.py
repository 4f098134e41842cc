"""Rate limits held in the database, so every `serve` process counts the same hits.

What is counted is who is behind a key, not how it is spelled: an IPv6 client holds a whole
/64 (its addresses change at will inside it), every loopback address is the one machine,
and an email address is counted as intake stores it (NFKC, case folded: ``ｓame@`` is
``same@``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

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
    key = _KEYS.get(scope, str)(key)
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
    store = service.for_intake
    hits = await (store.count_hit(digest, window) if count else store.hits(digest, window))
    return hits, max(1, math.ceil((window + 1) * window_seconds - now))


def address_key(host: str) -> str:
    """The client an address stands for: an IPv6 address's /64 (an IPv4-mapped one is
    the IPv4 address), one key for all of loopback, the IPv4 address itself; anything
    that is not an address (a test client's name) as it is."""
    try:
        address = ipaddress.ip_address(host.strip().split("%")[0])
    except ValueError:
        return host
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def email_key(email: str) -> str:
    """An address as intake normalises it, case folded: one key however it is typed."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


# The limits counted per client address (appeals, operator sign-ins) and per email.
_KEYS: dict[str, Callable[[str], str]] = {
    "ip": address_key,
    "sign-in": address_key,
    "email": email_key,
}


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``hits`` in each window of ``window_seconds`` (0: no limit)."""

    hits: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """The appeals intake takes from one client address a minute and for one email
    address an hour (DISPATCHER_INTAKE__PER_IP_PER_MINUTE and __PER_EMAIL_PER_HOUR):
    counted in the scopes "ip" and "email", which the reported actions share. None by
    default (an operator's command)."""

    per_address: Limit = Limit(0, 60)
    per_email: Limit = Limit(0, 3600)
