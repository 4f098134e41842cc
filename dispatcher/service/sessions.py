"""Operator sessions: signing in with the operator token starts a session; the browser
keeps only a random session id, which expires and ends at sign-out. Sign-in failures are
throttled per address, with a delay that grows with each one."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets

from dispatcher.models import utcnow
from dispatcher.service.context import Service
from dispatcher.service.limits import count_hit

# Failed sign-ins from one address: each waits longer (0.25 s, 0.5 s, 1 s … 8 s), and past
# this many in an hour the address is refused until the hour ends.
FAILURES_PER_HOUR = 20
_MAX_DELAY_SECONDS = 8.0


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def identify(given: str | None, tokens: dict[str, str]) -> str | None:
    """Whose token ``given`` is (``tokens`` maps an operator's name to theirs), or None.
    Every token is compared, in constant time, so timing tells nothing about which."""
    if not given:
        return None
    found = None
    for name, token in tokens.items():
        if hmac.compare_digest(given.encode(), token.encode()):
            found = name
    return found


async def start_session(service: Service, operator: str, *, lifetime: dt.timedelta) -> str:
    """A new session for ``operator``; returns its id (for the cookie). Only its hash is
    stored."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    await service.store.create_session(
        _hash(session_id), operator=operator, expires_at=now + lifetime, now=now
    )
    return session_id


async def session_operator(service: Service, session_id: str | None) -> str | None:
    """The operator signed in with this session, while it lasts."""
    if not session_id:
        return None
    return await service.store.session_operator(_hash(session_id), utcnow())


async def end_session(service: Service, session_id: str | None) -> None:
    if session_id:
        await service.store.end_session(_hash(session_id))


class SignInThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


async def check_sign_in_allowed(service: Service, address: str) -> None:
    """SignInThrottled while ``address`` has too many failures this hour: checked before
    the token is compared, so a locked-out guesser learns nothing about its guesses."""
    failures, left = await count_hit(service, "sign-in", address, window_seconds=3600, count=False)
    if failures >= FAILURES_PER_HOUR:
        raise SignInThrottled(left)


def sign_in_delay(failures: int, first_seconds: float) -> float:
    """How long the ``failures``-th failed sign-in this hour waits before its answer."""
    return min(_MAX_DELAY_SECONDS, first_seconds * 2.0 ** max(0, failures - 1))


async def sign_in_failed(service: Service, address: str, *, first_delay: float = 0.25) -> None:
    """Count a failed sign-in from ``address`` and wait before answering, twice as long
    with each failure this hour; SignInThrottled once there were too many."""
    failures, left = await count_hit(service, "sign-in", address, window_seconds=3600)
    if failures > FAILURES_PER_HOUR:
        raise SignInThrottled(left)
    await asyncio.sleep(sign_in_delay(failures, first_delay))
