"""Operator security (issue 15): form tokens bound to the session, so a token planted in
the browser's cookie by another page on the site acts for nobody; ``__Host-`` and Secure
cookies over https; bearer tokens throttled and audited on the sign-in form's counter;
tokens long enough; a changed token ends its sessions; reading supporters' data, wrong
tokens and refusals in the audit log with the client address; reserved operator names."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dispatcher.models import DeliveryStatus
from dispatcher.service import audit
from dispatcher.service.sessions import FAILURES_PER_HOUR
from dispatcher.service.validation import AppealRequest
from dispatcher.settings import Settings
from dispatcher.web.app import create_app
from dispatcher.web.deps import WebContext
from tests.conftest import OPEN_CAMPAIGN, submitted
from tests.web.conftest import OPERATOR_TOKEN, context_of, running_app, web_settings

ANA = "ana-token-0123456789"
LI = "li-token-abcdefghijkl"
BEARER = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
WRONG = {"Authorization": "Bearer not-anyones-token-at-all"}


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str = OPERATOR_TOKEN) -> httpx.Response:
    page = await client.get("/operator")
    return await client.post("/operator/login", data={"csrf": csrf_of(page), "token": token})


async def appeal(
    context: WebContext, name: str, channels: list[str], message: str | None = None
) -> str:
    request = AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name=name,
        supporter_email=f"{name.replace(' ', '.').lower()}@example.org",
        channels=channels,
        message=message,
    )
    return (await submitted(context.service, request)).appeal_id


async def statuses(context: WebContext) -> list[DeliveryStatus]:
    return [e.status for e in await context.service.store.list_deliveries()]


def plant(client: httpx.AsyncClient, name: str, value: str) -> None:
    """Another page on the same host (another port) sets the cookie: it replaces ours."""
    client.cookies.delete(name)
    # The domain the client keeps the host's own cookies under ("testserver" has no dot).
    client.cookies.set(name, value, domain="testserver.local", path="/")


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


@pytest.fixture
def reviewing(campaigns_dir: Path) -> Path:
    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("goal = 1000\n", "goal = 1000\nreview_own_letters = true\n", 1))
    return campaigns_dir


@contextlib.asynccontextmanager
async def https_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app as a browser reaches it over https (behind a TLS proxy)."""
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            yield app, client


# --- CSRF: a form token planted by another page on the site -------------------------------


async def test_a_form_token_planted_in_the_cookie_by_another_page_acts_for_nobody(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    settings = web_settings(tmp_path, campaigns_dir, database_url=database_url)
    async with running_app(settings) as (app, operator):
        context = context_of(app)
        for n in range(3):
            await appeal(context, f"Supporter {n}", ["fax"])
        assert (await sign_in(operator)).status_code == 303
        # The attacker's page, on another port or subdomain of the site, fetches a form of
        # ours for itself (a token signed by us, for no session) and plants it.
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as attacker:
            planted = csrf_of(await attacker.get("/c/" + OPEN_CAMPAIGN))
            # and one minted for another operator session (its own sign-in)
            await sign_in(attacker)
            other_session = csrf_of(await attacker.get("/operator"))
        for token in (planted, other_session):
            plant(operator, context.cookies.csrf, token)
            tossed = await operator.post(
                "/operator/bulk/cancel", data={"csrf": token, "channel": "fax"}
            )
            assert tossed.status_code == 403
            single = await operator.post("/operator/deliveries/1/cancel", data={"csrf": token})
            assert single.status_code == 403
        assert set(await statuses(context)) == {DeliveryStatus.QUEUED}
        # The dashboard's own form (its token minted for this session) still acts.
        page = await operator.get("/operator?channel=fax")
        done = await operator.post(
            "/operator/bulk/cancel", data={"csrf": csrf_of(page), "channel": "fax"}
        )
        cancelled = len(await statuses(context))
        assert done.status_code == 303 and f"bulk-cancel%3A{cancelled}" in done.headers["location"]
        assert set(await statuses(context)) == {DeliveryStatus.CANCELLED}


async def test_a_planted_form_token_cannot_reject_a_letter(tmp_path: Path, reviewing: Path) -> None:
    async with running_app(web_settings(tmp_path, reviewing)) as (app, operator):
        context = context_of(app)
        held = await appeal(context, "Ana Lima", ["email"], message="My own words, please.")
        await sign_in(operator)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as attacker:
            planted = csrf_of(await attacker.get("/c/" + OPEN_CAMPAIGN))
        plant(operator, context.cookies.csrf, planted)
        rejected = await operator.post(
            f"/operator/review/{held}/reject", data={"csrf": planted, "note": "spam"}
        )
        assert rejected.status_code == 403
        assert set(await statuses(context)) == {DeliveryStatus.HELD}


async def test_a_form_token_of_a_session_that_ended_is_refused(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        await appeal(context_of(app), "Ana Lima", ["fax"])
        await sign_in(client)
        old = csrf_of(await client.get("/operator"))
        await client.post("/operator/logout", data={"csrf": old})
        await sign_in(client)
        plant(client, context_of(app).cookies.csrf, old)
        refused = await client.post("/operator/deliveries/1/cancel", data={"csrf": old})
        assert refused.status_code == 403


# --- Cookies -------------------------------------------------------------------------------


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by the cookie's name, its attributes in lower case."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found[name] = header.lower()
    return found


async def test_over_https_the_cookies_are_host_prefixed_and_secure(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    settings = web_settings(tmp_path, campaigns_dir, public_url="https://appeals.example.org")
    async with https_app(settings) as (_, client):
        login_page = await client.get("/operator")
        csrf_cookie = set_cookies(login_page)["__Host-dispatcher_csrf"]
        signed_in = await client.post(
            "/operator/login", data={"csrf": csrf_of(login_page), "token": OPERATOR_TOKEN}
        )
        assert signed_in.status_code == 303
        session_cookie = set_cookies(signed_in)["__Host-dispatcher_operator"]
        for cookie in (csrf_cookie, session_cookie):
            attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
            assert {"secure", "httponly", "samesite", "path"} <= attributes
            assert "domain" not in attributes
            assert "path=/" in cookie and "samesite=strict" in cookie
        # The browser sends them back (https): the dashboard and its forms work.
        page = await client.get("/operator")
        assert "Signed in as" in page.text
        assert "dispatcher_operator" not in client.cookies  # no unprefixed cookie at all
        out = await client.post("/operator/logout", data={"csrf": csrf_of(page)})
        assert "max-age=0" in set_cookies(out)["__Host-dispatcher_operator"]
        assert "secure" in set_cookies(out)["__Host-dispatcher_operator"]
        assert 'name="token"' in (await client.get("/operator")).text


async def test_over_plain_http_on_loopback_the_cookies_keep_plain_names(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (_, client):
        signed_in = await sign_in(client)
        cookie = set_cookies(signed_in)["dispatcher_operator"]
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


# --- Bearer tokens: throttled and audited as sign-ins are ----------------------------------


async def test_wrong_bearer_tokens_count_with_the_form_and_lock_the_right_token_out(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    settings = web_settings(
        tmp_path, campaigns_dir, database_url=database_url, operator_sign_in_delay_seconds=0
    )
    async with running_app(settings) as (app, client):
        half = FAILURES_PER_HOUR // 2
        for _ in range(half):
            assert (await sign_in(client, "not-anyones-token-at-all")).status_code == 401
        for _ in range(FAILURES_PER_HOUR - half):
            assert (await client.get("/api/deliveries", headers=WRONG)).status_code == 401
        # Locked out: the right token too, by bearer header and by the form.
        refused = await client.get("/api/deliveries", headers=BEARER)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        error = error_of(refused)
        assert error["field"] == "authorization"
        assert "too many wrong operator tokens" in error["message"]
        assert (await client.post("/api/deliveries/1/retry", headers=BEARER)).status_code == 429
        assert (await sign_in(client)).status_code == 429
        entries = await audit.recent(context_of(app).service, limit=100)
    failed = [e for e in entries if e.action == "sign-in-failed"]
    assert len(failed) == FAILURES_PER_HOUR
    assert {e.address for e in failed} == {"127.0.0.1"}
    assert sum("for GET /api/deliveries" in e.subject for e in failed) == FAILURES_PER_HOUR - half
    # Refusals are recorded, the first of the hour only (a guesser cannot fill the log).
    [refusal] = [e for e in entries if e.action == "sign-in-refused"]
    assert refusal.address == "127.0.0.1" and "GET /api/deliveries" in refusal.subject
    assert not [e for e in entries if e.action == "sign-in"]


async def test_guesses_sent_all_at_once_are_compared_no_more_than_one_at_a_time(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    """A burst of wrong tokens: each guess is counted before the next from that address is
    compared, so no more are compared than a guesser sending one by one would get (before,
    all of them passed the lockout check together and were compared)."""
    settings = web_settings(
        tmp_path, campaigns_dir, database_url=database_url, operator_sign_in_delay_seconds=0
    )
    async with running_app(settings) as (app, client):
        burst = [
            client.get("/api/deliveries", headers=WRONG) for _ in range(FAILURES_PER_HOUR + 10)
        ]
        codes = [a.status_code for a in await asyncio.gather(*burst)]
        right = await client.get("/api/deliveries", headers=BEARER)
        entries = await audit.recent(context_of(app).service, limit=100)
    assert (codes.count(401), codes.count(429)) == (FAILURES_PER_HOUR, 10)
    assert right.status_code == 429
    assert len([e for e in entries if e.action == "sign-in-failed"]) == FAILURES_PER_HOUR


async def test_a_wrong_bearer_token_waits_like_a_wrong_sign_in(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    settings = web_settings(tmp_path, campaigns_dir, operator_sign_in_delay_seconds=0.2)
    async with running_app(settings) as (_, client):
        waits = []
        for _ in range(3):
            started = time.monotonic()
            assert (await client.get("/api/deliveries", headers=WRONG)).status_code == 401
            waits.append(time.monotonic() - started)
        assert waits[0] >= 0.2 and waits[1] >= 0.4 and waits[2] >= 0.8
        # The right one is answered at once.
        started = time.monotonic()
        assert (await client.get("/api/deliveries", headers=BEARER)).status_code == 200
        assert time.monotonic() - started < 0.2


# --- Tokens and names ----------------------------------------------------------------------


def test_the_shared_token_is_at_least_16_characters() -> None:
    with pytest.raises(ValueError, match=r"DISPATCHER_OPERATOR_TOKEN\) is shorter than 16"):
        Settings.model_validate({"operator_token": "abc"})
    with pytest.raises(ValueError, match="shorter than 16"):
        Settings.model_validate({"operator_token": "fifteen-chars!!"})
    assert Settings.model_validate({"operator_token": "sixteen-chars!!!"}).operator_token


@pytest.mark.parametrize("name", ["unknown", "system", "admin", "root", "cli", "nobody"])
def test_reserved_operator_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"operator name '{name}' is reserved.*choose a name"):
        Settings.model_validate({"operators": {name: ANA}})


async def test_a_changed_token_ends_the_sessions_it_opened(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    def settings(ana: str, shared: str) -> Settings:
        return web_settings(
            tmp_path,
            campaigns_dir,
            database_url=database_url,
            operators={"ana": ana, "li": LI},
            operator_token=shared,
            secret_key="the-same-secret-key-in-every-process",
        )

    async with running_app(settings(ANA, OPERATOR_TOKEN)) as (_, client):
        sessions = {}
        for token in (ANA, LI, OPERATOR_TOKEN):
            client.cookies.clear()
            await sign_in(client, token)
            sessions[token] = dict(client.cookies)
    # Ana's token and the shared one were changed (one was leaked, say); Li's was not.
    async with running_app(settings("ana-new-token-987654321", "shared-new-token-12345")) as (
        _,
        client,
    ):
        for token, still in ((ANA, False), (OPERATOR_TOKEN, False), (LI, True)):
            client.cookies.clear()
            client.cookies.update(sessions[token])
            assert (await client.get("/api/deliveries")).status_code == (200 if still else 401)
            page = await client.get("/operator")
            assert ('name="token"' in page.text) is not still


# --- Audit: reading supporters' data, with the client address ------------------------------


async def test_reading_supporters_data_is_audited_with_who_and_from_where(
    tmp_path: Path, reviewing: Path, database_url: str
) -> None:
    settings = web_settings(tmp_path, reviewing, database_url=database_url, operators={"ana": ANA})
    async with running_app(settings) as (app, client):
        context = context_of(app)
        await appeal(context, "Li Wei", ["email"], message="My own words, please.")
        await appeal(context, "Ana Lima", ["email"])
        await sign_in(client, ANA)
        before = len(await audit.recent(context.service, limit=500))
        # Polls and the live stream's page are not views of personal data.
        await client.get("/operator/summary")
        assert len(await audit.recent(context.service, limit=500)) == before
        await client.get("/operator/supporters?q=wei")
        await client.get("/operator/review")
        await client.get("/operator/deliveries/1")
        await client.get("/api/deliveries?campaign=" + OPEN_CAMPAIGN, headers=BEARER)
        await client.get("/api/review", headers=BEARER)
        await client.get("/api/supporters?format=csv", headers=BEARER)
        await client.get("/api/deliveries/export?format=json", headers=BEARER)
        assert (await client.post("/api/deliveries/3/cancel", headers=BEARER)).is_success
        entries = (await audit.recent(context.service, limit=500))[: -before or None]
    seen = [(e.operator, e.action, e.subject, e.address) for e in reversed(entries)]
    assert seen == [
        ("ana", "view", "the supporter list: 1 supporters (search='wei')", "127.0.0.1"),
        ("ana", "view", "1 letters waiting for review", "127.0.0.1"),
        ("ana", "view", "delivery 1", "127.0.0.1"),
        (
            "(shared token)",
            "view",
            f"4 deliveries (campaign={OPEN_CAMPAIGN})",
            "127.0.0.1",
        ),
        ("(shared token)", "view", "1 letters waiting for review", "127.0.0.1"),
        ("(shared token)", "export", "2 supporters as csv (all campaigns)", "127.0.0.1"),
        ("(shared token)", "export", "4 deliveries as json (all deliveries)", "127.0.0.1"),
        ("(shared token)", "cancel", "delivery 3", "127.0.0.1"),
    ]
