"""The JSON API over ASGI: every endpoint, status code and bad input of issue 3."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import OPERATOR_TOKEN, MakeClient, delivery_ids, status_path

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
NAMES = {"xi-jinping": "Xi Jinping", "cui-tiankai": "Cui Tiankai"}


def appeal(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"supporter": {"name": "Ana Lima", "email": "ana@example.org"}}
    body.update(overrides)
    return body


async def appeals_stored(client: httpx.AsyncClient) -> int:
    report = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")
    return int(report.json()["rehearsal"]["appeals"])  # the tests rehearse on the sandbox


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return dict(body["error"])


async def test_one_step_appeal_is_accepted_then_counted_once(client: httpx.AsyncClient) -> None:
    first = await client.post(APPEALS, json=appeal())
    assert first.status_code == 202
    body = first.json()
    assert len(body["appeal_id"]) >= 20 and body["confirm_by_email"] is False
    assert [(d["target"], d["channel"]) for d in body["deliveries"]] == [
        ("xi-jinping", "email"),
        ("xi-jinping", "fax"),
        ("cui-tiankai", "email"),
        ("cui-tiankai", "fax"),
        ("cui-tiankai", "twitter"),
    ]
    again = await client.post(
        APPEALS, json=appeal(supporter={"name": "Ana", "email": "ANA@example.org"})
    )
    # Counted once, and answered exactly as a first submission is.
    assert again.status_code == 202
    assert set(again.json()) == set(body) and again.json()["deliveries"] == body["deliveries"]
    assert again.json()["appeal_id"] != body["appeal_id"]
    assert await appeals_stored(client) == 1


async def test_an_email_address_alone_shows_nothing_of_whoever_signed_with_it(
    client: httpx.AsyncClient,
) -> None:
    """The High case: knowing a victim's address, submit with it, then try the answer's id
    on the status page, the API and the deletion link."""
    victim = await client.post(APPEALS, json=appeal(channels=["email"]))
    victim_id = victim.json()["appeal_id"]
    probe = await client.post(
        APPEALS,
        json=appeal(supporter={"name": "Mallory", "email": "ana@example.org"}, channels=["email"]),
    )
    never = await client.post(
        APPEALS,
        json=appeal(
            supporter={"name": "Mallory", "email": "nobody@example.org"}, channels=["email"]
        ),
    )
    assert probe.status_code == never.status_code == 202
    shape = {k: v for k, v in probe.json().items() if k != "appeal_id"}
    assert shape == {k: v for k, v in never.json().items() if k != "appeal_id"}
    assert victim_id not in probe.text
    for appeal_id in (probe.json()["appeal_id"], never.json()["appeal_id"], victim_id):
        assert (await client.get(f"/api/appeals/{appeal_id}?token=")).status_code == 404
        assert (await client.get(f"/a/{appeal_id}")).status_code == 404
        assert (await client.delete(f"/api/appeals/{appeal_id}?token=x")).status_code == 404
    assert (await client.get(f"/api/appeals/{victim_id}")).status_code == 422


async def test_idempotency_key_returns_the_first_result_to_the_same_supporter_only(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post(APPEALS, json=appeal(idempotency_key="k-1", channels=["email"]))
    same = appeal(
        supporter={"name": "Ana", "email": "ANA@example.org"},
        idempotency_key="k-1",
        channels=["fax"],
    )
    again = await client.post(APPEALS, json=same)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["appeal_id"] == first.json()["appeal_id"]
    # Someone else using the same key is another supporter's new appeal, not a repeat.
    mallory = appeal(
        supporter={"name": "Mallory", "email": "mallory@example.org"}, idempotency_key="k-1"
    )
    theirs = await client.post(APPEALS, json=mallory)
    assert theirs.status_code == 202
    assert theirs.json()["appeal_id"] != first.json()["appeal_id"]
    assert await appeals_stored(client) == 2


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (appeal(supporter={"name": "Ana", "email": "nope"}), "supporter.email", "'nope'"),
        (
            appeal(supporter={"name": "Ana\r\nBcc: x@y.org", "email": "a@example.org"}),
            "supporter.name",
            "line-break",
        ),
        (appeal(targets=["mayor"]), "targets", "unknown target 'mayor'"),
        (appeal(channels=["pigeon"]), "channels", "unknown channel 'pigeon'"),
        (appeal(tweet="释" * 120), "tweet", "280"),
        (appeal(message="word " * 3000), "message", "at most 10000"),
        ({"supporter": {"name": "Ana"}}, "supporter.email", "Field required"),
        (appeal(surprise=True), "surprise", "Extra inputs"),
        (appeal(channels="email"), "channels", "valid array"),
    ],
)
async def test_invalid_appeal_is_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, says: str
) -> None:
    response = await client.post(APPEALS, json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == field
    assert says in error["message"]
    assert await appeals_stored(client) == 0


async def test_malformed_json_is_422_without_a_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        APPEALS, content=b'{"supporter": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response)["field"] is None


async def test_status_precedence_404_then_413_then_410_then_422(client: httpx.AsyncClient) -> None:
    huge = b"x" * (256 * 1024 + 1)
    unknown = await client.post("/api/campaigns/nope/appeals", content=huge)
    assert unknown.status_code == 404 and error_of(unknown)["field"] == "campaign"
    too_large = await client.post("/api/campaigns/ua-61-21/appeals", content=huge)
    assert too_large.status_code == 413
    closed = await client.post("/api/campaigns/ua-61-21/appeals", content=b"{not json")
    assert closed.status_code == 410
    assert "2021-09-10" in error_of(closed)["message"]


async def test_rate_limits_per_ip_and_per_email(make_client: MakeClient) -> None:
    from dispatcher.settings import IntakeSettings

    limits = IntakeSettings(per_ip_per_minute=3, per_email_per_hour=1)
    async with make_client(intake=limits) as client:
        ok = await client.post(APPEALS, json=appeal(channels=["email"]))
        assert ok.status_code == 202
        same_email = await client.post(APPEALS, json=appeal(channels=["fax"]))
        assert same_email.status_code == 429 and "email" in error_of(same_email)["message"]
        assert int(same_email.headers["retry-after"]) > 0
        other = appeal(supporter={"name": "Bo", "email": "bo@example.org"})
        assert (await client.post(APPEALS, json=other)).status_code == 202
        fourth = await client.post(
            APPEALS, json=appeal(supporter={"name": "Cy", "email": "cy@example.org"})
        )
        assert fourth.status_code == 429 and "address" in error_of(fourth)["message"]


async def test_appeal_status_for_the_supporter(client: httpx.AsyncClient) -> None:
    created = (await client.post(APPEALS, json=appeal(channels=["email"]))).json()
    path = status_path(client, created["appeal_id"])
    status = await client.get("/api" + path.replace("/a/", "/appeals/", 1))
    assert status.status_code == 200
    assert [{k: v for k, v in d.items() if k != "id"} for d in status.json()["deliveries"]] == [
        {
            "target": d["target"],
            "target_name": NAMES[d["target"]],
            "channel": "email",
            "status": "queued",
            "reason": None,
            "rehearsal": True,  # the tests' channels go to the sandbox
            "hand_off": None,
        }
        for d in created["deliveries"]
    ]
    assert status.json()["appeal_id"] == created["appeal_id"]
    missing = await client.get("/api/appeals/not-a-real-appeal?token=" + path.split("=")[1])
    assert missing.status_code == 404
    wrong = await client.get(f"/api/appeals/{created['appeal_id']}?token=" + "0" * 32)
    assert wrong.status_code == 404


async def test_public_campaign_data_has_no_supporter_data(client: httpx.AsyncClient) -> None:
    await client.post(APPEALS, json=appeal())
    listing = await client.get("/api/campaigns")
    assert {c["id"]: c["open"] for c in listing.json()["campaigns"]} == {
        "ua-61-21": False,
        OPEN_CAMPAIGN: True,
    }
    one = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}")
    assert one.json()["letters"]["en"]["body"].startswith("I am distressed")
    assert one.json()["targets"][1]["twitter"] == ["@ChineseEmbinUS", "@AmbCuiTiankai"]
    for response in (listing, one, await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")):
        assert "ana@example.org" not in response.text
    assert (await client.get("/api/campaigns/nope")).status_code == 404


async def test_self_reported_actions_are_counted_apart(client: httpx.AsyncClient) -> None:
    url = f"/api/campaigns/{OPEN_CAMPAIGN}/reported-actions"
    ana = {"name": "Ana", "email": "ana@example.org"}
    made = await client.post(url, json={"target": "cui-tiankai", "kind": "call", "supporter": ana})
    assert made.status_code == 201 and made.json()["kind"] == "call"
    bo = {"name": "Bo", "email": "bo@example.org"}
    await client.post(url, json={"target": "cui-tiankai", "kind": "letter", "supporter": bo})
    bad_kind = await client.post(
        url, json={"target": "cui-tiankai", "kind": "fax", "supporter": ana}
    )
    assert bad_kind.status_code == 422 and error_of(bad_kind)["field"] == "kind"
    bad_target = await client.post(url, json={"target": "mayor", "kind": "call", "supporter": ana})
    assert bad_target.status_code == 422 and error_of(bad_target)["field"] == "target"
    closed = await client.post(
        "/api/campaigns/ua-61-21/reported-actions",
        json={"target": "xi-jinping", "kind": "call", "supporter": ana},
    )
    assert closed.status_code == 410
    unknown = await client.post(
        "/api/campaigns/nope/reported-actions",
        json={"target": "x", "kind": "call", "supporter": ana},
    )
    assert unknown.status_code == 404
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["actions"] == 0
    assert report["self_reported"] == {
        "total": 2,
        "targets": {"cui-tiankai": {"call": 1, "letter": 1}},
    }


async def test_a_self_reported_action_counts_once_per_supporter_official_and_kind(
    make_client: MakeClient,
) -> None:
    """The count is shared with officials: the same report posted again (or with the
    email in capitals) is answered the same and not counted again; no email, no count;
    limits apply."""
    from dispatcher.settings import IntakeSettings

    url = f"/api/campaigns/{OPEN_CAMPAIGN}/reported-actions"
    limits = IntakeSettings(per_ip_per_minute=0, per_email_per_hour=3)
    async with make_client(intake=limits) as client:
        body = {"target": "xi-jinping", "kind": "call", "supporter": {"email": "ana@example.org"}}
        first = await client.post(url, json=body)
        assert first.status_code == 201
        again = await client.post(url, json={**body, "supporter": {"email": "ANA@Example.org"}})
        # Counted once, and answered as a first report is: an address tells nothing.
        assert again.status_code == 201 and again.json() == first.json()
        nobody = await client.post(url, json={"target": "xi-jinping", "kind": "call"})
        assert nobody.status_code == 422 and error_of(nobody)["field"] == "supporter"
        blank = await client.post(url, json={**body, "supporter": {"email": " "}})
        assert blank.status_code == 422 and error_of(blank)["field"] == "supporter.email"
        letter = await client.post(url, json={**body, "kind": "letter"})
        assert letter.status_code == 201  # another kind is another action
        limited = await client.post(url, json={**body, "target": "cui-tiankai"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["self_reported"]["total"] == 2


async def test_operator_endpoints_need_the_token(make_client: MakeClient) -> None:
    # Without the growing wait after each wrong token (7.75 s for these five): that wait
    # is tests/web/test_operator_safety.py's.
    async with make_client(operator_sign_in_delay_seconds=0) as client:
        for method, url in (
            ("GET", "/api/deliveries"),
            ("GET", "/api/deliveries/stream"),
            ("POST", "/api/deliveries/1/retry"),
            ("POST", "/api/deliveries/1/cancel"),
            ("GET", f"/api/campaigns/{OPEN_CAMPAIGN}/report.csv"),
        ):
            missing = await client.request(method, url)
            wrong = await client.request(method, url, headers={"Authorization": "Bearer nope"})
            assert (missing.status_code, wrong.status_code) == (401, 401), url
            assert error_of(missing)["message"] == "operator token missing or wrong"


async def test_operator_endpoints_are_disabled_without_a_configured_token(
    make_client: MakeClient,
) -> None:
    async with make_client(operator_token=None) as client:
        response = await client.get("/api/deliveries", headers=OPERATOR)
        assert response.status_code == 404
        assert "DISPATCHER_OPERATOR_TOKEN" in error_of(response)["message"]


async def test_delivery_log_filters_and_pages(client: httpx.AsyncClient) -> None:
    for n in range(3):
        await client.post(
            APPEALS, json=appeal(supporter={"name": f"S{n}", "email": f"s{n}@example.org"})
        )
    page = await client.get("/api/deliveries?limit=4", headers=OPERATOR)
    first = page.json()
    assert len(first["deliveries"]) == 4 and first["next_cursor"] is not None
    ids = [d["id"] for d in first["deliveries"]]
    assert ids == sorted(ids, reverse=True)
    rest = (
        await client.get(
            f"/api/deliveries?limit=100&cursor={first['next_cursor']}", headers=OPERATOR
        )
    ).json()
    assert len(rest["deliveries"]) == 11 and rest["next_cursor"] is None
    assert {d["id"] for d in rest["deliveries"]}.isdisjoint(ids)
    faxes = (
        await client.get("/api/deliveries?channel=fax&target=xi-jinping", headers=OPERATOR)
    ).json()
    assert {(d["channel"], d["target"]) for d in faxes["deliveries"]} == {("fax", "xi-jinping")}
    assert len(faxes["deliveries"]) == 3
    row = faxes["deliveries"][0]
    assert set(row) >= {
        "id",
        "appeal_id",
        "campaign",
        "target",
        "channel",
        "status",
        "attempts",
        "last_error",
        "updated_at",
    }
    with_attempts = (
        await client.get("/api/deliveries?include=attempts&limit=1", headers=OPERATOR)
    ).json()
    assert with_attempts["deliveries"][0]["attempts_detail"] == []
    bad = await client.get("/api/deliveries?status=lost", headers=OPERATOR)
    assert bad.status_code == 422 and error_of(bad)["field"] == "status"


async def test_retry_and_cancel(client: httpx.AsyncClient) -> None:
    created = (await client.post(APPEALS, json=appeal(channels=["email"]))).json()
    first, second = await delivery_ids(client, created["appeal_id"])
    cancelled = await client.post(f"/api/deliveries/{first}/cancel", headers=OPERATOR)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/api/deliveries/{first}/cancel", headers=OPERATOR)
    assert again.status_code == 409 and "cancelled" in error_of(again)["message"]
    retried = await client.post(f"/api/deliveries/{first}/retry", headers=OPERATOR)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert (await client.post("/api/deliveries/999/retry", headers=OPERATOR)).status_code == 404
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert report["rehearsal"]["channels"]["email"]["pending"] == 2
    assert second != first


async def test_report_csv_for_operators(client: httpx.AsyncClient) -> None:
    await client.post(APPEALS, json=appeal())
    response = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report.csv", headers=OPERATOR)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "campaign,mode,target,channel,delivered,failed,pending,cancelled,handed_off"
    assert f"{OPEN_CAMPAIGN},rehearsal,cui-tiankai,twitter,0,0,1,0,0" in lines
    assert f"{OPEN_CAMPAIGN},live,cui-tiankai,twitter,0,0,0,0,0" in lines


async def test_health_metrics_docs_and_security_headers(client: httpx.AsyncClient) -> None:
    await client.post(APPEALS, json=appeal())
    health = await client.get("/healthz", headers=OPERATOR)
    assert health.status_code == 200 and health.json()["database"] == "ok"
    metrics = await client.get("/metrics")
    assert 'dispatcher_deliveries{channel="fax",status="queued"} 2.0' in metrics.text
    assert "dispatcher_queue_depth 5.0" in metrics.text
    assert "dispatcher_attempt_seconds" in metrics.text
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    asset = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    schema = (await client.get("/openapi.json")).json()
    assert "/api/campaigns/{campaign_id}/appeals" in schema["paths"]
    headers = health.headers
    assert (
        "'unsafe-inline'"
        not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
