"""Operator sign-in: a server-side session in the cookie (never the token), ended by
sign-out or expiry; wrong tokens throttled per address."""

from __future__ import annotations

import datetime as dt
import re

import httpx

from dispatcher.models import utcnow
from dispatcher.service.sessions import FAILURES_PER_HOUR, find_session, sign_in_delay
from dispatcher.web.security import OPERATOR_COOKIE
from tests.web.conftest import APP_OF, OPERATOR_TOKEN, MakeClient, context_of


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, token: str = OPERATOR_TOKEN) -> httpx.Response:
    page = await client.get("/operator")
    return await client.post("/operator/login", data={"csrf": csrf_of(page), "token": token})


async def test_the_cookie_holds_a_session_that_sign_out_ends(make_client: MakeClient) -> None:
    async with make_client() as client:
        signed_in = await sign_in(client)
        assert signed_in.status_code == 303
        session = client.cookies[OPERATOR_COOKIE]
        assert OPERATOR_TOKEN not in session and len(session) >= 40
        assert "max-age=43200" in signed_in.headers["set-cookie"].lower()
        assert (await client.get("/api/deliveries")).status_code == 200
        dashboard = await client.get("/operator")
        await client.post("/operator/logout", data={"csrf": csrf_of(dashboard)})
        # The same cookie, replayed after sign-out, opens nothing.
        client.cookies.set(OPERATOR_COOKIE, session)
        assert (await client.get("/api/deliveries")).status_code == 401
        assert 'name="token"' in (await client.get("/operator")).text


async def test_a_session_ends_at_its_expiry(make_client: MakeClient) -> None:
    """A session lasts ``operator_session_hours`` from sign-in: looked up on a clock set
    just before its end, it is found; set at its end, it is not (and a request with its
    cookie is then refused, as after sign-out, above)."""
    lifetime = dt.timedelta(hours=2)
    async with make_client(operator_session_hours=2) as client:
        started_after = utcnow()
        await sign_in(client)
        started_before = utcnow()
        assert (await client.get("/api/deliveries")).status_code == 200
        service = context_of(APP_OF[client]).service
        session = client.cookies[OPERATOR_COOKIE]
        last_second = started_after + lifetime - dt.timedelta(seconds=1)
        assert await find_session(service, session, now=last_second) is not None
        assert await find_session(service, session, now=started_before + lifetime) is None
        assert await find_session(service, session) is not None  # now: it still lasts


async def test_wrong_tokens_wait_longer_each_time_then_the_address_is_refused(
    make_client: MakeClient,
) -> None:
    assert [sign_in_delay(n, 0.25) for n in (1, 2, 3, 4, 9)] == [0.25, 0.5, 1.0, 2.0, 8.0]
    async with make_client(operator_sign_in_delay_seconds=0) as client:
        for _ in range(FAILURES_PER_HOUR):
            assert (await sign_in(client, "wrong")).status_code == 401
        refused = await sign_in(client, "wrong")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many wrong tokens" in refused.text
        # Refused before the token is even compared: the right one waits out the hour too.
        assert (await sign_in(client)).status_code == 429
