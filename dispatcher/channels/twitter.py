"""Posts on X with tweepy's AsyncClient (OAuth 1.0a user context)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import tweepy
import tweepy.asynchronous
from yarl import URL

from dispatcher.channels.base import (
    DeliveryError,
    DuplicateContent,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
)
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.tweet import compose_tweet, post_reference

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


def classify_tweepy_error(exc: tweepy.HTTPException) -> DeliveryError:
    status = exc.response.status
    message = f"X answered HTTP {status}: {_detail(exc)}"
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


class TwitterAdapter:
    """One tweet per delivery: the target's handles, the appeal's tweet, the supporter's name."""

    channel = Channel.TWITTER
    # X refuses the same text twice from one account: posting again after an unknown
    # outcome either posts it (the first never arrived) or is refused as a duplicate
    # (it did), which the worker settles as delivered.
    finds_earlier = True

    def __init__(
        self,
        *,
        api_base_url: str,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        timeout: float = 30.0,
        provider: str = "x",
    ) -> None:
        self.provider = provider
        self.api_base_url = api_base_url
        self._client = tweepy.asynchronous.AsyncClient(
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
        )
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> None:
        # aiohttp sessions belong to a running loop: create on first use, not in __init__.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                request_class=rewriting_request_class(self.api_base_url),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
            self._client.session = self._session

    async def send(self, delivery: ClaimedDelivery) -> SendResult:
        self._ensure_session()
        text = compose_tweet(
            delivery.address,
            delivery.tweet or "",
            delivery.supporter_name,
            post_reference(delivery.appeal_id, delivery.duplicates_before),
        )
        try:
            response = await self._client.create_tweet(text=text, user_auth=True)
        except tweepy.HTTPException as exc:
            raise classify_tweepy_error(exc) from exc
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
