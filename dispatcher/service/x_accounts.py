"""A supporter's own X account, connected on the campaign page, and the posts handed to
supporters to send themselves.

Connecting: :func:`start_connection` keeps a new connection (its id and the authorisation's
state as hashes, the PKCE verifier sealed) and answers with X's consent page;
:func:`finish_connection` takes X's answer, exchanges the code for tokens and keeps them
sealed. The page holds the connection's id (a cookie) and sends it with the appeal, which
binds it (see ``store.x_accounts_sql``). Tokens are sealed with a key derived from
DISPATCHER_SECRET_KEY and go once the appeal's posts settle.

Handing off: a post the API cannot send becomes a link to X's web intent with the
prepared text, through our redirect (:func:`open_hand_off`), which records that it was
opened. Such posts are counted as unverified, never as actions.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken

from dispatcher.channels.x_limits import APP_KEY
from dispatcher.channels.x_oauth import TokenRefused, XToken, new_verifier
from dispatcher.models import HAND_OFF, Channel
from dispatcher.render.tweet import compose_own_post
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError, invalid
from dispatcher.service.links import address_alias
from dispatcher.store import Store

INTENT_URL = "https://x.com/intent/post"
# The cookie that holds a connection's id between X's consent page and the Send button.
CONNECTION_COOKIE = "x_connection"


def _key(service: Service, purpose: bytes) -> bytes:
    return hmac.new(service.link_key, purpose, hashlib.sha256).digest()


class Sealer:
    """Encrypts what is kept of a connection (Fernet: AES-CBC with an HMAC) under a key
    derived from DISPATCHER_SECRET_KEY."""

    def __init__(self, service: Service) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_key(service, b"x-accounts")))

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode("ascii")

    def open(self, sealed: str) -> dict[str, Any] | None:
        """What was sealed, or None when it cannot be read (another key sealed it)."""
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _hash(service: Service, purpose: str, value: str) -> str:
    message = f"{purpose}:{value}".encode("utf-8", "surrogateescape")
    return hmac.new(service.link_key, message, hashlib.sha256).hexdigest()


def connection_hash(service: Service, connection_id: str) -> str:
    return _hash(service, "x-connection", connection_id)


def x_way(service: Service, campaign_id: str) -> str:
    """How this campaign's posts go out here, for its page: "organisation" (from the
    organisation's account), "own" (from the supporter's, once connected; else handed
    to them), or "hand_off" (always handed to them)."""
    campaign = service.catalog.get(campaign_id)
    mode = campaign.x_mode if campaign is not None else "hand_off"
    if mode == "organisation" and service.x_organisation:
        return "organisation"
    if mode == "own_account" and service.x_oauth is not None:
        return "own"
    return "hand_off"


async def x_app_capped(service: Service) -> tuple[dt.datetime, str] | None:
    """Until when X's 24-hour cap for the app is reached (new posts are handed off), or
    None. Our rehearsal's cap is the sandbox's; hand-offs need no app."""
    if (
        not service.channel_on(Channel.TWITTER)
        or service.providers.get(Channel.TWITTER) == HAND_OFF
    ):
        return None
    return await service.store.x_limit_spent(APP_KEY)


def not_possible() -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        "posting from supporters' own X accounts is not set up here",
        "x_connection",
    )


async def start_connection(service: Service, campaign_id: str) -> tuple[str, str]:
    """A new connection for ``campaign_id``'s page: (its id, X's consent page to send the
    supporter to)."""
    if service.x_oauth is None or x_way(service, campaign_id) != "own":
        raise not_possible()
    connection_id, state = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = new_verifier()
    sealed = Sealer(service).seal(
        {"verifier": verifier, "campaign": campaign_id, "connection": connection_id}
    )
    await service.store.begin_x_connect(
        connection_hash(service, connection_id),
        state_hash=_hash(service, "x-state", state),
        sealed=sealed,
    )
    return connection_id, service.x_oauth.authorize_link(state, verifier)


@dataclass(frozen=True, slots=True)
class Connected:
    """X's answer on the consent page, as the campaign page tells it."""

    campaign_id: str
    connection_id: str | None  # None: declined, or X refused
    username: str = ""


async def finish_connection(
    service: Service, *, state: str, code: str | None, error: str | None
) -> Connected:
    """X sent the supporter back: with a ``code`` (they agreed), or an ``error`` (they
    declined). ServiceError (not found) for a state we did not give or already used."""
    found = await service.store.x_connect_by_state(_hash(service, "x-state", state))
    sealer = Sealer(service)
    kept = sealer.open(found[1]) if found is not None else None
    if found is None or kept is None or service.x_oauth is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND, "this X sign-in is not one we started, or it was used", "state"
        )
    id_hash, campaign_id = found[0], str(kept["campaign"])
    if error is not None or not code:
        await service.store.drop_x_connection(id_hash)
        return Connected(campaign_id, None)
    try:
        token = await service.x_oauth.exchange(code, str(kept["verifier"]))
    except TokenRefused:
        await service.store.drop_x_connection(id_hash)
        return Connected(campaign_id, None)
    await service.store.finish_x_connect(id_hash, sealer.seal(token.to_json()))
    return Connected(campaign_id, str(kept["connection"]), token.username)


async def _ready(service: Service, connection_id: str | None) -> XToken | None:
    """An unused connection's tokens, once X gave them (None: none, or not finished)."""
    if not connection_id:
        return None
    sealed = await service.store.x_connection(connection_hash(service, connection_id))
    kept = Sealer(service).open(sealed) if sealed is not None else None
    return XToken.from_json(kept) if kept is not None and "access_token" in kept else None


async def connected_account(service: Service, connection_id: str | None) -> str | None:
    """The @handle of an unused connection with tokens (None: none, or not finished)."""
    token = await _ready(service, connection_id)
    return token.username if token is not None else None


@dataclass(frozen=True, slots=True)
class Connection:
    """A connection an appeal binds: its hash, and who the account is, as the posts from
    it are told apart (``x:<X's user id>``, and that under the address-alias key, which is
    what is kept once the supporter's data is deleted)."""

    hash: str
    identity: tuple[str, str]


async def checked_connection(service: Service, connection_id: str | None) -> Connection | None:
    """The connection an appeal binds, when one is given and ready; None without one.
    ServiceError (invalid) for one that is not ready or gone."""
    token = await _ready(service, connection_id)
    if not connection_id:
        return None
    if token is None:
        raise invalid(
            "x_connection",
            "this X account connection has expired or was not finished: connect again, or "
            "send without it and post on X yourself",
            "x_connection",
        )
    who = f"x:{token.user_id}"
    return Connection(connection_hash(service, connection_id), (who, address_alias(service, who)))


class StoredTokens:
    """The adapter's view of supporters' tokens: sealed in the store (see
    ``channels.twitter.AccountTokens``)."""

    def __init__(self, service: Service) -> None:
        self._store: Store = service.store
        self._sealer = Sealer(service)

    async def load(self, appeal_id: str) -> XToken | None:
        sealed = await self._store.x_sealed(appeal_id)
        kept = self._sealer.open(sealed) if sealed is not None else None
        return XToken.from_json(kept) if kept is not None and "access_token" in kept else None

    async def save(self, appeal_id: str, token: XToken) -> None:
        await self._store.save_x_sealed(appeal_id, self._sealer.seal(token.to_json()))


def intent_url(text: str) -> str:
    """X's web intent: the post, prepared, for the supporter to send from their account."""
    return f"{INTENT_URL}?{urlencode({'text': text})}"


def hand_off_text(handles: str, tweet: str) -> str:
    return compose_own_post(handles, tweet)


def hand_off_link(service: Service, appeal_id: str, target_id: str, text: str) -> str:
    """Our redirect to the prepared post (it records the opening), signed so that it
    carries only the text we prepared."""
    token = _hash(service, "x-post", f"{appeal_id}\n{target_id}\n{text}")[:32]
    query = urlencode({"appeal": appeal_id, "target": target_id, "text": text, "token": token})
    return f"/x/post?{query}"


async def open_hand_off(
    service: Service, *, appeal_id: str, target_id: str, text: str, token: str
) -> str:
    """Record the opening (the appeal's handed-off post to ``target_id``, if stored) and
    answer with X's intent; ServiceError (not found) for a link we did not make."""
    expected = _hash(service, "x-post", f"{appeal_id}\n{target_id}\n{text}")[:32]
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode()):
        raise ServiceError(ErrorKind.NOT_FOUND, "this link is not one we made", "token")
    await service.store.open_hand_off(appeal_id, target_id)
    return intent_url(text)


def twitter_targets(service: Service, campaign_id: str) -> dict[str, str]:
    """The campaign's X targets and their handles, as a post mentions them."""
    campaign = service.catalog.get(campaign_id)
    if campaign is None:
        return {}
    return {t.id: " ".join(t.twitter) for t in campaign.targets if t.twitter}
