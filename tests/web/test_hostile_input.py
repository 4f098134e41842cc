"""Inputs meant to hurt: oversized and chunked bodies, ids past the store's range, values
that would turn the service against a supporter or an official. Every one is a 4xx with
the error shape, the same on SQLite and PostgreSQL, and nothing is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dispatcher.settings import IntakeSettings
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import OPERATOR_TOKEN, MakeClient, live_server, web_settings

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
BODIES = [
    f"/api/campaigns/{OPEN_CAMPAIGN}/tweet-length",
    f"/api/campaigns/{OPEN_CAMPAIGN}/reported-actions",
    f"/api/campaigns/{OPEN_CAMPAIGN}/appeals",
    "/webhooks/fax",
]


# The start of a multipart form whose one field never ends: a parser keeps reading it.
FORM_START = b'--b\r\nContent-Disposition: form-data; name="fax"\r\n\r\n'


async def megabytes(n: int) -> AsyncIterator[bytes]:
    """``n`` MB sent in 64 KB chunks, with no Content-Length (chunked encoding)."""
    yield FORM_START
    chunk = b"x" * 65536
    for _ in range(n * 16):
        yield chunk


@pytest.mark.parametrize("path", BODIES)
async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    path: str, tmp_path: Path, campaigns_dir: Path
) -> None:
    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    # Multipart, so that the fax callback reads its form (it reads nothing otherwise).
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with live_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        declared = await http.post(path, content=FORM_START + b"x" * 2_000_000, headers=headers)
        chunked = await http.post(path, content=megabytes(3), headers=headers)
    for response in (declared, chunked):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["status"] == 413 and "at most" in error["message"]


@pytest.mark.parametrize("action", ["retry", "cancel"])
async def test_a_delivery_id_past_the_stores_range_is_a_422_on_either_database(
    action: str, database_url: str, make_client: MakeClient
) -> None:
    async with make_client(database_url=database_url) as client:
        huge = await client.post(f"/api/deliveries/{2**31}/{action}", headers=OPERATOR)
        unknown = await client.post(f"/api/deliveries/{2**31 - 1}/{action}", headers=OPERATOR)
    assert huge.status_code == 422
    assert huge.json()["error"]["field"] == "delivery_id"
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("supporter", "field"),
    [
        ({"name": "Ana", "email": "not an email <script>"}, "supporter.email"),
        ({"name": "Ana", "email": "a" * 320 + "@example.org"}, "supporter.email"),
        ({"name": "Ana", "email": "ana\u0000@example.org"}, "supporter.email"),
        ({"name": "Ana\u0000", "email": "ana@example.org"}, "supporter.name"),
        ({"name": "Ana\u202e", "email": "ana@example.org"}, "supporter.name"),
    ],
)
async def test_reported_actions_validate_the_supporter_like_appeals_on_either_database(
    supporter: dict[str, str], field: str, database_url: str, make_client: MakeClient
) -> None:
    url = f"/api/campaigns/{OPEN_CAMPAIGN}/reported-actions"
    body = {"target": "xi-jinping", "kind": "call", "supporter": supporter}
    async with make_client(database_url=database_url) as client:
        response = await client.post(url, json=body)
        report = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert report.json()["self_reported"]["total"] == 0


@pytest.mark.parametrize(("trusted", "second"), [([], 429), (["127.0.0.1"], 202)])
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    trusted: list[str], second: int, tmp_path: Path, campaigns_dir: Path
) -> None:
    """One appeal per address a minute. A client's own X-Forwarded-For does not make it a
    new address unless the peer is a proxy the settings trust."""
    settings = web_settings(
        tmp_path,
        campaigns_dir,
        intake=IntakeSettings(per_ip_per_minute=1, per_email_per_hour=0),
        trusted_proxies=trusted,
    )
    app = create_app(settings, run_worker=False)
    url = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
    async with live_server(app, settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        codes = []
        for n, address in enumerate(["203.0.113.1", "203.0.113.2"]):
            body = {"supporter": {"name": "Ana", "email": f"a{n}@example.org"}}
            response = await http.post(url, json=body, headers={"X-Forwarded-For": address})
            codes.append(response.status_code)
    assert codes == [202, second]
