"""Operator sessions and tokens: signing in with an operator token starts a session; the
browser keeps only a random session id, which expires, ends at sign-out, and ends when
its operator's token is changed or removed.

Wrong tokens are throttled per client address on one counter, whether they come from the
sign-in form or an API request's bearer header: each waits longer than the last, and past
FAILURES_PER_HOUR the address is refused, the right token included, until the hour ends.
Every wrong token and every refusal is in the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator

from dispatcher.models import utcnow
from dispatcher.service import audit
from dispatcher.service.context import Service
from dispatcher.service.limits import count_hit
from dispatcher.settings import UNKNOWN_OPERATOR
from dispatcher.store.operators import SessionRow

__all__ = [
    "FAILURES_PER_HOUR",
    "SessionRow",
    "SignInThrottled",
    "end_session",
    "find_session",
    "identify",
    "session_holder",
    "sign_in_delay",
    "start_session",
    "token_fingerprint",
    "token_holder",
]

# Failed sign-ins from one address: each waits longer (0.25 s, 0.5 s, 1 s … 8 s), and past
# this many in an hour the address is refused until the hour ends.
FAILURES_PER_HOUR = 20
_MAX_DELAY_SECONDS = 8.0
_WINDOW_SECONDS = 3600


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def token_fingerprint(key: bytes, token: str) -> str:
    """A keyed fingerprint of an operator token (HMAC-SHA256 under ``key``, derived from
    the secret key): stored with a session to notice that the token changed, it says
    nothing about the token to whoever reads the database without the key."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


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


async def start_session(
    service: Service, operator: str, *, fingerprint: str, lifetime: dt.timedelta
) -> str:
    """A new session for ``operator``, who signed in with the token ``fingerprint`` is of;
    returns its id (for the cookie). Only its hash is stored."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    await service.store.create_session(
        _hash(session_id),
        operator=operator,
        token_fingerprint=fingerprint,
        expires_at=now + lifetime,
        now=now,
    )
    return session_id


async def find_session(
    service: Service, session_id: str | None, *, now: dt.datetime | None = None
) -> SessionRow | None:
    """The session with this id, while it lasts (whatever has become of its token) at
    ``now`` (by default, the present)."""
    if not session_id:
        return None
    return await service.store.find_session(_hash(session_id), now or utcnow())


async def session_holder(
    service: Service, session_id: str | None, tokens: dict[str, str], key: bytes
) -> str | None:
    """The operator signed in with this session, while it lasts and while their token
    (in ``tokens``) is still the one they signed in with; None otherwise."""
    session = await find_session(service, session_id)
    if session is None or session.operator not in tokens:
        return None
    current = token_fingerprint(key, tokens[session.operator])
    if not hmac.compare_digest(session.token_fingerprint, current):
        return None
    return session.operator


async def end_session(service: Service, session_id: str | None) -> None:
    if session_id:
        await service.store.end_session(_hash(session_id))


class SignInThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong operator tokens; try again in {retry_after} s")
        self.retry_after = retry_after


def sign_in_delay(failures: int, first_seconds: float) -> float:
    """How long the ``failures``-th failed sign-in this hour waits before its answer."""
    return min(_MAX_DELAY_SECONDS, first_seconds * 2.0 ** max(0, failures - 1))


class _OneAtATime:
    """A lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def holding(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


# Token guesses from one address are compared one at a time in this process: each is
# counted (and waits) before the next is looked at, so a burst sent at once cannot pass
# the lockout check together. Processes share the count through the database.
_GUESSES = _OneAtATime()


async def token_holder(
    service: Service,
    given: str,
    tokens: dict[str, str],
    *,
    address: str,
    where: str,
    first_delay: float,
) -> str | None:
    """The operator whose token ``given`` is; None for a wrong one, after it was counted
    against ``address``, recorded in the audit log and made to wait (twice as long with
    each failure this hour). ``where`` says what the token was for (the audit subject).

    SignInThrottled while ``address`` has had FAILURES_PER_HOUR wrong tokens this hour:
    checked before the token is compared, so a locked-out guesser learns nothing, not
    even from the right token. Refusals count on, and the first of each hour is recorded.
    Tokens from one address are compared one at a time (in this process)."""
    async with _GUESSES.holding(address):
        return await _token_holder(
            service, given, tokens, address=address, where=where, first_delay=first_delay
        )


async def _token_holder(
    service: Service,
    given: str,
    tokens: dict[str, str],
    *,
    address: str,
    where: str,
    first_delay: float,
) -> str | None:
    failures, _ = await count_hit(
        service, "sign-in", address, window_seconds=_WINDOW_SECONDS, count=False
    )
    if failures < FAILURES_PER_HOUR:
        operator = identify(given, tokens)
        if operator is not None:
            return operator
        await audit.record(
            service,
            UNKNOWN_OPERATOR,
            "sign-in-failed",
            f"with a wrong token {where}",
            address=address,
        )
    # A refusal counts too: the hour's count says when the first one was.
    failures, left = await count_hit(service, "sign-in", address, window_seconds=_WINDOW_SECONDS)
    if failures <= FAILURES_PER_HOUR:
        await asyncio.sleep(sign_in_delay(failures, first_delay))
        return None
    if failures == FAILURES_PER_HOUR + 1:
        # Only the first refusal of the hour: a guesser that keeps on trying does not fill
        # the log.
        await audit.record(
            service,
            UNKNOWN_OPERATOR,
            "sign-in-refused",
            f"{where} after {FAILURES_PER_HOUR} wrong tokens this hour, for {left} s more "
            "(further refusals this hour are not recorded)",
            address=address,
        )
    raise SignInThrottled(left)
