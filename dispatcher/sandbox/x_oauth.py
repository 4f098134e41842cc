"""The sandbox X API's OAuth 2.0: the consent page a supporter is sent to
(``/i/oauth2/authorize``: authorise or cancel), the token endpoint
(``POST /2/oauth2/token``: an authorisation code with its PKCE verifier, or a refresh
token, which is rotated) and ``GET /2/users/me``. Codes, tokens and accounts live in
memory; what a real X checks that matters to us is checked here too (S256 challenge,
redirect URI, client id, expiry, one use per code and refresh token)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web

REQUIRED_SCOPES = frozenset({"tweet.read", "tweet.write", "users.read"})
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")


@dataclass
class Account:
    """A sandbox X user: who a token posts as."""

    id: str
    username: str


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    account: Account
    scopes: frozenset[str]


@dataclass
class OAuthState:
    """Everything the sandbox's OAuth 2.0 has handed out."""

    token_seconds: float = 7200.0
    codes: dict[str, _Grant] = field(default_factory=dict)
    access: dict[str, tuple[Account, float]] = field(default_factory=dict)
    refresh: dict[str, tuple[Account, str]] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)

    def account(self, username: str) -> Account:
        found = self.accounts.get(username.lower())
        if found is None:
            found = Account(str(1_000_000 + len(self.accounts)), username)
            self.accounts[username.lower()] = found
        return found

    def user_of(self, authorization: str) -> Account | None:
        """The account a ``Bearer`` user token posts as, while the token lives."""
        scheme, _, token = authorization.partition(" ")
        held = self.access.get(token) if scheme == "Bearer" else None
        if held is None or held[1] <= time.time():
            return None
        return held[0]

    def issue(self, account: Account, client_id: str) -> dict[str, object]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access[access] = (account, time.time() + self.token_seconds)
        self.refresh[refresh] = (account, client_id)
        return {
            "token_type": "bearer",
            "expires_in": int(self.token_seconds),
            "access_token": access,
            "scope": "tweet.read tweet.write users.read offline.access",
            "refresh_token": refresh,
        }


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title></head><body style="font-family:sans-serif;'
        f'max-width:32rem;margin:2rem auto;padding:0 1rem"><h1>{html.escape(title)}</h1>'
        f"{body}</body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


async def authorize_page(state: OAuthState, request: web.Request) -> web.Response:
    """X's consent page: which app asks for what, and Authorize / Cancel."""
    q = request.query
    problems = [
        name
        for name, ok in (
            ("response_type", q.get("response_type") == "code"),
            ("client_id", bool(q.get("client_id"))),
            ("redirect_uri", q.get("redirect_uri", "").startswith(("http://", "https://"))),
            ("code_challenge", len(q.get("code_challenge", "")) >= 43),
            ("code_challenge_method", q.get("code_challenge_method") == "S256"),
            ("scope", set(q.get("scope", "").split()) >= REQUIRED_SCOPES),
            ("state", bool(q.get("state"))),
        )
        if not ok
    ]
    if problems:
        return _page("Something went wrong", f"<p>Bad {html.escape(problems[0])}.</p>", 400)
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in q.items()
    )
    body = (
        "<p>(Sandbox X.) An app wants to post on X for you "
        f"({html.escape(q['scope'])}).</p>"
        f'<form method="post">{hidden}'
        '<p><label>Sign in as @<input name="username" value="sandbox_supporter" '
        'autocomplete="off"></label></p>'
        '<button name="decision" value="allow" id="authorize">Authorize app</button> '
        '<button name="decision" value="deny" id="cancel">Cancel</button></form>'
    )
    return _page("Authorize app", body)


async def authorize_decision(state: OAuthState, request: web.Request) -> web.Response:
    """The supporter's choice: back to the app with a code, or with access_denied."""
    form = await request.post()
    redirect_uri, app_state = str(form.get("redirect_uri", "")), str(form.get("state", ""))
    if not redirect_uri.startswith(("http://", "https://")):
        return _page("Something went wrong", "<p>Bad redirect_uri.</p>", 400)
    username = str(form.get("username", ""))
    if form.get("decision") != "allow" or not _USERNAME.fullmatch(username):
        query = {"error": "access_denied", "state": app_state}
        raise web.HTTPFound(f"{redirect_uri}?{urlencode(query)}")
    code = secrets.token_urlsafe(32)
    state.codes[code] = _Grant(
        client_id=str(form.get("client_id", "")),
        redirect_uri=redirect_uri,
        challenge=str(form.get("code_challenge", "")),
        account=state.account(username),
        scopes=frozenset(str(form.get("scope", "")).split()),
    )
    raise web.HTTPFound(f"{redirect_uri}?{urlencode({'state': app_state, 'code': code})}")


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _client_id(request: web.Request, form_client: str) -> str:
    """The client id from HTTP Basic (a confidential client) or the form (a public one)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic":
        try:
            return base64.b64decode(encoded).decode().partition(":")[0]
        except ValueError:
            return ""
    return form_client


async def token(state: OAuthState, request: web.Request) -> web.Response:
    """``POST /2/oauth2/token``: the authorisation code (with its verifier) or a refresh
    token, for a new access token and a new refresh token."""
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error("invalid_request", "Expected application/x-www-form-urlencoded")
    form = await request.post()
    client_id = _client_id(request, str(form.get("client_id", "")))
    if not client_id:
        return _oauth_error("invalid_request", "Missing required parameter [client_id].")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        held = state.codes.pop(str(form.get("code", "")), None)
        verifier = str(form.get("code_verifier", "")).encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if (
            held is None
            or held.client_id != client_id
            or held.redirect_uri != form.get("redirect_uri")
            or digest.decode() != held.challenge
        ):
            return _oauth_error(
                "invalid_request", "Value passed for the authorization code was invalid."
            )
        return web.json_response(state.issue(held.account, client_id))
    if grant == "refresh_token":
        found = state.refresh.pop(str(form.get("refresh_token", "")), None)
        if found is None or found[1] != client_id:
            return _oauth_error("invalid_request", "Value passed for the token was invalid.")
        return web.json_response(state.issue(found[0], client_id))
    return _oauth_error("unsupported_grant_type", "Unsupported grant_type.")


async def users_me(state: OAuthState, request: web.Request) -> web.Response:
    account = state.user_of(request.headers.get("Authorization", ""))
    if account is None:
        return web.json_response(
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
            status=401,
        )
    return web.json_response(
        {"data": {"id": account.id, "name": account.username, "username": account.username}}
    )
