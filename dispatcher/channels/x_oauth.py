"""X's OAuth 2.0 for supporters' own accounts: authorisation code with PKCE (RFC 6749,
RFC 7636), the token exchange and refresh at ``POST /2/oauth2/token``, and the user
look-up ``GET /2/users/me``. Spoken over one pooled httpx client per app, to X or to the
sandbox X API."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx

from dispatcher.channels.base import PermanentError, TransientError
from dispatcher.models import utcnow

# What posting from the supporter's account needs: read and write posts, who they are,
# and a refresh token (a post may wait in the queue longer than an access token lives).
SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
# An access token this close to its end is refreshed before use.
REFRESH_MARGIN = dt.timedelta(seconds=60)


class TokenRefused(PermanentError):
    """X refused the code or the refresh token (expired, revoked, or consent withdrawn):
    the app cannot post for this supporter any more."""


@dataclass(frozen=True, slots=True)
class XToken:
    """A supporter's tokens, and whose they are (X's numeric user id and @handle)."""

    access_token: str
    refresh_token: str | None
    expires_at: dt.datetime
    user_id: str = ""
    username: str = ""

    def stale(self, now: dt.datetime | None = None) -> bool:
        return (now or utcnow()) + REFRESH_MARGIN >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
            "user_id": self.user_id,
            "username": self.username,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> XToken:
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=dt.datetime.fromisoformat(str(data["expires_at"])),
            user_id=str(data.get("user_id") or ""),
            username=str(data.get("username") or ""),
        )


def new_verifier() -> str:
    """A PKCE code verifier: 86 characters from the unreserved set (43-128 allowed)."""
    return secrets.token_urlsafe(64)


def challenge(verifier: str) -> str:
    """The S256 code challenge for ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(slots=True, eq=False)
class XOAuthClient:
    """One X app (its client id, and secret for a confidential client) and where it
    sends supporters back to (``redirect_uri``, under DISPATCHER_PUBLIC_URL).

    Its requests share one pooled HTTP client, made on first use; ``aclose()`` closes it
    (whoever built this client does, when done with it)."""

    api_base_url: str
    authorize_url: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    timeout: float = 30.0
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(base_url=self.api_base_url, timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def authorize_link(self, state: str, verifier: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(SCOPES),
            "state": state,
            "code_challenge": challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.authorize_url}?{urlencode(query)}"

    async def exchange(self, code: str, verifier: str) -> XToken:
        """The tokens for an authorisation ``code`` (and whose account they open)."""
        token = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
        )
        user_id, username = await self.me(token.access_token)
        return XToken(token.access_token, token.refresh_token, token.expires_at, user_id, username)

    async def refresh(self, token: XToken) -> XToken:
        """New tokens for ``token`` (X rotates the refresh token with each use)."""
        if not token.refresh_token:
            raise TokenRefused("the supporter's X access ended and no refresh token was given")
        fresh = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        )
        return XToken(
            fresh.access_token,
            fresh.refresh_token or token.refresh_token,
            fresh.expires_at,
            token.user_id,
            token.username,
        )

    async def me(self, access_token: str) -> tuple[str, str]:
        """X's id and @handle of the account ``access_token`` opens."""
        try:
            response = await self._http().get(
                "/2/users/me", headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"cannot reach the X API: {exc!r}") from exc
        body = _json(response)
        if response.status_code >= 400 or not isinstance(body.get("data"), dict):
            raise _refusal(response, body, "looking up the connected account")
        return str(body["data"].get("id", "")), str(body["data"].get("username", ""))

    async def _token_request(self, form: dict[str, str]) -> XToken:
        headers = {}
        if self.client_secret:  # a confidential client authenticates with HTTP Basic
            # (RFC 6749 2.3.1: id and secret form-encoded, then joined by a colon)
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form = {**form, "client_id": self.client_id}
        try:
            response = await self._http().post("/2/oauth2/token", data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"cannot reach X's token endpoint: {exc!r}") from exc
        body = _json(response)
        access, expires_in = body.get("access_token"), body.get("expires_in", 7200)
        if response.status_code >= 400 or not isinstance(access, str):
            raise _refusal(response, body, "asking for the supporter's tokens")
        seconds = float(expires_in) if isinstance(expires_in, int | float) else 7200.0
        refresh = body.get("refresh_token")
        return XToken(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) else None,
            expires_at=utcnow() + dt.timedelta(seconds=seconds),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(response: httpx.Response, body: dict[str, Any], doing: str) -> Exception:
    status = response.status_code
    said = body.get("error_description") or body.get("detail") or body.get("error") or ""
    message = f"X answered HTTP {status} {doing}" + (f": {said}" if said else "")
    if status >= 500 or status == 429:
        return TransientError(message, code=str(status))
    return TokenRefused(message, code=str(body.get("error") or status))
