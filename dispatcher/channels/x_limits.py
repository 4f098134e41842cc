"""X's limits as its answers state them, and where they are kept (no I/O here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol

# The pacing keys of X's limits: the organisation's account (the channel's own key), a
# supporter's account, and the app's 24-hour cap (over every account).
ORGANISATION_KEY = "twitter:account"
APP_KEY = "twitter:app"


def user_key(user_id: str) -> str:
    return f"twitter:user:{user_id}"


class AccountLimits(Protocol):
    """Where X's limits are kept for every worker (the store's pacing)."""

    async def x_limit_seen(
        self, key: str, remaining: int, resets_at: dt.datetime, reason: str
    ) -> None: ...

    async def x_limit_take(self, key: str) -> tuple[dt.datetime, str] | None: ...


def limits_stated(headers: Mapping[str, str]) -> list[tuple[str, int, dt.datetime, str]]:
    """What X's headers say is left: ("account" or "app", remaining, when it resets, what
    it is). X sends ``x-rate-limit-*`` (this endpoint and account, 15 minutes),
    ``x-user-limit-24hour-*`` (this account, a day) and ``x-app-limit-24hour-*`` (the
    app, a day)."""
    found = []
    for prefix, scope, what in (
        ("x-rate-limit", "account", "X's 15-minute limit for the account is used up"),
        ("x-user-limit-24hour", "account", "X's 24-hour limit for the account is used up"),
        ("x-app-limit-24hour", "app", "X's 24-hour cap for the app is reached"),
    ):
        remaining, reset = (
            headers.get(f"{prefix}-remaining", ""),
            headers.get(f"{prefix}-reset", ""),
        )
        if remaining.isdigit() and reset.isdigit():
            resets = dt.datetime.fromtimestamp(int(reset), dt.UTC)
            found.append((scope, int(remaining), resets, what))
    return found
