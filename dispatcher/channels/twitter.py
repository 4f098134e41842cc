"""Posts on X with tweepy's AsyncClient: from the supporter's own account (their OAuth 2.0
user token, see ``x_oauth``) or from the organisation's (OAuth 1.0a user context), as the
campaign's ``x_mode`` says; a post the API cannot send is handed off (``HandOff``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

import aiohttp
import tweepy
import tweepy.asynchronous
from yarl import URL

from dispatcher.channels.base import (
    UNGUARDED,
    DeliveryError,
    DuplicateContent,
    HandOff,
    LeaseGuard,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
    ensure_lease_held,
)
from dispatcher.channels.x_limits import (
    APP_KEY,
    ORGANISATION_KEY,
    AccountLimits,
    limits_stated,
    user_key,
)
from dispatcher.channels.x_oauth import TokenRefused, XOAuthClient, XToken
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.tweet import compose_own_post, compose_tweet, post_reference

TWEEPY_HOST = "api.twitter.com"


def rewriting_request_class(base_url: str) -> type[aiohttp.ClientRequest]:
    """An aiohttp request class that sends tweepy's hard-coded host to ``base_url`` instead.

    tweepy builds ``https://api.twitter.com/...`` itself; rewriting in the session keeps
    tweepy untouched (its OAuth signature still covers the URL it built).
    """
    base = URL(base_url)
    prefix = base.path.rstrip("/")

    class _Rewriting(aiohttp.ClientRequest):
        def __init__(self, method: str, url: URL, *args: Any, **kwargs: Any) -> None:
            if url.host == TWEEPY_HOST:
                url = base.with_path(prefix + url.path, encoded=True).with_query(url.query)
            super().__init__(method, url, *args, **kwargs)

    return _Rewriting


def _detail(exc: tweepy.HTTPException) -> str:
    messages = [str(m) for m in exc.api_messages] or [exc.response.reason or ""]
    return "; ".join(messages)


# X's problem ``reason``s and words that mean this app or account may not post at all.
_HAND_OFF_REASONS = ("client-not-enrolled", "suspended")


def classify_tweepy_error(exc: tweepy.HTTPException, reason: str = "") -> DeliveryError:
    status = exc.response.status
    message = f"X answered HTTP {status}: {_detail(exc)}"
    if status == 403 and any(r in f"{reason} {message}".lower() for r in _HAND_OFF_REASONS):
        return HandOff(message, code=reason or str(status))
    if isinstance(exc, tweepy.TooManyRequests):
        reset = exc.response.headers.get("x-rate-limit-reset")
        retry_after = float(reset) - time.time() if reset and reset.isdigit() else 60.0
        return RateLimited(message, retry_after=retry_after, code=str(status))
    if isinstance(exc, tweepy.Forbidden) and "duplicate content" in message.lower():
        return DuplicateContent(message, code=str(status))
    if isinstance(exc, tweepy.TwitterServerError):
        return TransientError(message, code=str(status))
    return PermanentError(message, code=str(status))


def classify_status_only(exc: aiohttp.ClientResponseError) -> DeliveryError:
    status = exc.status
    message = f"X answered HTTP {status} without a JSON body"
    if status == 429:
        reset = exc.headers.get("x-rate-limit-reset", "") if exc.headers else ""
        retry_after = float(reset) - time.time() if reset.isdigit() else 60.0
        return RateLimited(message, retry_after=retry_after, code=str(status))
    if status >= 500 or status == 408:
        return TransientError(message, code=str(status))
    return PermanentError(message, code=str(status))


@dataclass(frozen=True, slots=True)
class OrganisationKeys:
    """The organisation's X account: OAuth 1.0a consumer keys and access token."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str


class AccountTokens(Protocol):
    """Where a supporter's tokens are kept (sealed in the store; see service.x_accounts)."""

    async def load(self, appeal_id: str) -> XToken | None: ...

    async def save(self, appeal_id: str, token: XToken) -> None: ...


# The headers of the answer to the request being made (set per send: see _post).
_seen_headers: ContextVar[dict[str, str] | None] = ContextVar("_seen_headers", default=None)


async def _keep_headers(
    session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestEndParams
) -> None:
    seen = _seen_headers.get()
    if seen is not None:
        seen.update({name.lower(): value for name, value in params.response.headers.items()})


class TwitterAdapter:
    """One post per delivery: the target's handles and the appeal's post, from the
    supporter's account (``own_account``) or, with the supporter's name and a reference,
    from the organisation's (``organisation``)."""

    channel = Channel.TWITTER
    # X refuses the same text twice from one account: posting again after an unknown
    # outcome either posts it (the first never arrived) or is refused as a duplicate
    # (it did), which the worker settles as delivered.
    finds_earlier = True

    def __init__(
        self,
        *,
        api_base_url: str,
        organisation: OrganisationKeys | None,
        oauth: XOAuthClient | None = None,
        modes: Mapping[str, str] | None = None,
        default_mode: str = "own_account",
        timeout: float = 30.0,
        provider: str = "x",
    ) -> None:
        self.provider = provider
        self.api_base_url = api_base_url
        self.oauth = oauth
        # Each campaign's x_mode (``default_mode`` for one not named).
        self.modes: Mapping[str, str] = modes or {}
        self.default_mode = default_mode
        # Set by the composition root: the supporters' sealed tokens in the store, and
        # where X's limits are kept for every worker.
        self.accounts: AccountTokens | None = None
        self.limits: AccountLimits | None = None
        self._organisation = (
            tweepy.asynchronous.AsyncClient(
                consumer_key=organisation.consumer_key,
                consumer_secret=organisation.consumer_secret,
                access_token=organisation.access_token,
                access_token_secret=organisation.access_token_secret,
            )
            if organisation is not None
            else None
        )
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        # aiohttp sessions belong to a running loop: create on first use, not in __init__.
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(_keep_headers)
            self._session = aiohttp.ClientSession(
                request_class=rewriting_request_class(self.api_base_url),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trace_configs=[trace],
            )
        return self._session

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        mode = self.modes.get(delivery.campaign_id, self.default_mode)
        if mode == "hand_off":
            raise HandOff("the campaign asks supporters to post on X themselves")
        if mode == "organisation":
            if self._organisation is None:
                raise HandOff("no X organisation account is configured")
            text = compose_tweet(
                delivery.address,
                delivery.tweet or "",
                delivery.supporter_name,
                post_reference(delivery.appeal_id, delivery.duplicates_before),
            )
            self._organisation.session = self._ensure_session()
            return await self._post(
                self._organisation, text, ORGANISATION_KEY, lease, user_auth=True
            )
        return await self._post_as_supporter(delivery, lease)

    async def _post_as_supporter(self, delivery: ClaimedDelivery, lease: LeaseGuard) -> SendResult:
        """From the supporter's own account: refreshed first when its token is stale, and
        once more if X says the token is no longer good. The log says which account."""
        text = compose_own_post(delivery.address, delivery.tweet or "")
        token = await self._token(delivery.appeal_id, refresh=False)
        key = user_key(token.user_id)
        try:
            posted = await self._post(self._as(token), text, key, lease, user_auth=False)
        except PermanentError as exc:
            if exc.code != "401":
                raise
            token = await self._token(delivery.appeal_id, refresh=True)
            try:
                posted = await self._post(self._as(token), text, key, lease, user_auth=False)
            except PermanentError as again:
                if again.code == "401":
                    raise HandOff(f"X refused the supporter's token: {again.message}") from again
                raise
        return replace(posted, summary=f"{posted.summary} from @{token.username}")

    def _as(self, token: XToken) -> tweepy.asynchronous.AsyncClient:
        client = tweepy.asynchronous.AsyncClient(bearer_token=token.access_token)
        client.session = self._ensure_session()
        return client

    async def _token(self, appeal_id: str, *, refresh: bool) -> XToken:
        """The supporter's token, refreshed (and kept) when stale or when ``refresh``."""
        token = await self.accounts.load(appeal_id) if self.accounts is not None else None
        if token is None:
            raise HandOff("the supporter's X account is not connected (or no longer)")
        if not (refresh or token.stale()):
            return token
        if self.oauth is None:
            raise HandOff("no X app for supporters' own accounts is configured")
        try:
            token = await self.oauth.refresh(token)
        except TokenRefused as exc:
            raise HandOff(f"X refused to renew the supporter's access: {exc.message}") from exc
        assert self.accounts is not None
        await self.accounts.save(appeal_id, token)
        return token

    async def _within_limits(self, key: str) -> None:
        """Take one post from X's app cap and from this account's limits, as X last
        stated them; while one is used up, wait (RateLimited) rather than run into X's
        429. An own account's wait is its own, not the channel's."""
        if self.limits is None:
            return
        for checked, whole in ((APP_KEY, True), (key, key == ORGANISATION_KEY)):
            spent = await self.limits.x_limit_take(checked)
            if spent is not None:
                until, reason = spent
                raise RateLimited(
                    f"not posted: {reason} until {until:%Y-%m-%d %H:%M:%S} UTC",
                    retry_after=(until - dt.datetime.now(dt.UTC)).total_seconds(),
                    whole_channel=whole,
                )

    async def _note_limits(self, key: str, headers: Mapping[str, str]) -> None:
        if self.limits is None:
            return
        for scope, remaining, resets_at, what in limits_stated(headers):
            await self.limits.x_limit_seen(
                APP_KEY if scope == "app" else key, remaining, resets_at, what
            )

    async def _post(
        self,
        client: tweepy.asynchronous.AsyncClient,
        text: str,
        key: str,
        lease: LeaseGuard,
        *,
        user_auth: bool,
    ) -> SendResult:
        """One post to X as ``client``'s account (``key``: its limits), within them."""
        await self._within_limits(key)
        ensure_lease_held(lease)  # a token refresh or the limits' look-up may have been slow
        seen: dict[str, str] = {}
        _seen_headers.set(seen)
        try:
            return await self._create(client, text, user_auth=user_auth)
        except RateLimited as exc:
            exc.whole_channel = key == ORGANISATION_KEY  # a supporter's limit is theirs
            raise
        finally:
            await self._note_limits(key, seen)

    async def _create(
        self, client: tweepy.asynchronous.AsyncClient, text: str, *, user_auth: bool
    ) -> SendResult:
        try:
            response = await client.create_tweet(text=text, user_auth=user_auth)
        except tweepy.HTTPException as exc:
            raise classify_tweepy_error(exc, await _problem_reason(exc)) from exc
        except aiohttp.ClientResponseError as exc:
            # A non-JSON error body (a proxy's HTML page): classify by status alone; a
            # 2xx whose body is not JSON may have posted it (unknown).
            if 200 <= exc.status < 300:
                raise TransientError(
                    f"X answered HTTP {exc.status} with a body that is not JSON",
                    outcome_unknown=True,
                ) from exc
            raise classify_status_only(exc) from exc
        except ValueError as exc:  # a 2xx body that claims JSON but is not
            raise TransientError(
                f"X answered with a body that is not JSON: {exc}", outcome_unknown=True
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransientError(f"cannot reach the X API at {self.api_base_url}: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(f"X API connection failed: {exc!r}", outcome_unknown=True) from exc
        tweet_id = (getattr(response, "data", None) or {}).get("id")
        if tweet_id is None:
            raise TransientError(
                "X accepted the post but its answer has no post id", outcome_unknown=True
            )
        return SendResult(confirmed=True, provider_ref=str(tweet_id), summary=f"tweet {tweet_id}")

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        return SendResult(confirmed=True, provider_ref=delivery.provider_ref)

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        return None  # posting again is the question (see finds_earlier)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self.oauth is not None:
            await self.oauth.aclose()


async def _problem_reason(exc: tweepy.HTTPException) -> str:
    """The ``reason`` of X's problem body (``client-not-enrolled``, …), if it has one."""
    try:
        body: Any = await exc.response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return ""
    return str(body.get("reason") or "") if isinstance(body, dict) else ""
