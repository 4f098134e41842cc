"""The operator's tools beyond one delivery: named operators and the audit log of what
each did, actions on a whole filtered selection, exports of every delivery and of the
supporter list, totals and chart that follow the log, and one time format."""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

import httpx
import pytest

from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service.forget import forget_appeal
from dispatcher.service.links import link_token
from dispatcher.service.operator import cancel_delivery
from dispatcher.service.validation import AppealRequest
from dispatcher.settings import Settings
from dispatcher.web.deps import WebContext
from tests.conftest import OPEN_CAMPAIGN, settings_for, submitted
from tests.web.conftest import OPERATOR_TOKEN, context_of, running_app, web_settings

ANA = "ana-token-0123456789"
LI = "li-token-abcdefghijkl"
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def named(tmp_path: Path, campaigns_dir: Path) -> Settings:
    return web_settings(tmp_path, campaigns_dir, operators={"ana": ANA, "li": LI})


def audit_lines(dashboard: httpx.Response) -> list[str]:
    """The audit log as the dashboard shows it, a line per entry, times as T."""
    audit = dashboard.text[dashboard.text.index("What operators did") :]
    lines = [re.sub(r"<[^>]+>", "", line) for line in re.findall(r"<li>(.*?)</li>", audit)]
    return [html.unescape(TIME.sub("T", line)) for line in lines]


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get("/operator")
    return await client.post("/operator/login", data={"csrf": csrf_of(page), "token": token})


async def appeal(context: WebContext, name: str, email: str, channels: list[str]) -> str:
    request = AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name=name,
        supporter_email=email,
        channels=channels,
        contact_ok=email.startswith("ana"),
    )
    return (await submitted(context.service, request)).appeal_id


async def send_all(context: WebContext, box: Sandbox, campaigns_dir: Path) -> None:
    settings = settings_for(box, database_url="unused", campaigns_dir=campaigns_dir)
    worker = build_worker(settings, context.service)
    try:
        await worker.run(drain=True)
    finally:
        await close_adapters(worker)


async def test_each_named_operator_signs_in_with_their_token_and_the_log_says_who_did_what(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(named(tmp_path, campaigns_dir)) as (app, client):
        context = context_of(app)
        await appeal(context, "Ana Lima", "ana@example.org", ["email"])
        assert (await sign_in(client, "not-anyones-token")).status_code == 401
        assert (await sign_in(client, ANA)).status_code == 303
        page = await client.get("/operator")
        assert "Signed in as <strong>ana</strong>" in page.text
        first = re.search(r'data-delivery="(\d+)"', page.text)
        assert first is not None
        delivery = int(first.group(1))
        retried = await client.post(
            f"/operator/deliveries/{delivery}/cancel", data={"csrf": csrf_of(page)}
        )
        assert retried.status_code == 303
        # Li uses the API with her own token; the shared token is one more, unnamed operator.
        li = {"Authorization": f"Bearer {LI}"}
        assert (await client.post(f"/api/deliveries/{delivery}/retry", headers=li)).is_success
        shared = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        await client.get("/api/deliveries/export?format=csv", headers=shared)
        dashboard = await client.get("/operator")
    assert audit_lines(dashboard) == [
        "T · (shared token) exported 2 deliveries as csv (all deliveries) from 127.0.0.1",
        f"T · li retried delivery {delivery} from 127.0.0.1",
        f"T · ana cancelled delivery {delivery} from 127.0.0.1",
        "T · ana signed in to the dashboard from 127.0.0.1",
        "T · unknown failed to sign in with a wrong token at the dashboard from 127.0.0.1",
    ]


async def test_a_removed_operator_token_ends_that_operators_session(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(named(tmp_path, campaigns_dir)) as (_, client):
        await sign_in(client, LI)
        cookies = dict(client.cookies)
        assert (await client.get("/api/deliveries")).status_code == 200
    without_li = web_settings(tmp_path, campaigns_dir, operators={"ana": ANA})
    async with running_app(without_li) as (_, client):
        client.cookies.update(cookies)
        assert (await client.get("/api/deliveries")).status_code == 401


def test_operator_names_and_tokens_are_checked_when_settings_load() -> None:
    with pytest.raises(ValueError, match="operator name 'Ana Lima' is not accepted"):
        Settings.model_validate({"operators": {"Ana Lima": ANA}})
    with pytest.raises(ValueError, match="shorter than 16"):
        Settings.model_validate({"operators": {"ana": "short"}})
    with pytest.raises(ValueError, match="shares its token"):
        Settings.model_validate({"operators": {"ana": ANA, "li": ANA}})


async def test_retry_and_cancel_act_on_the_whole_filtered_selection(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(named(tmp_path, campaigns_dir)) as (app, client):
        context = context_of(app)
        for n in range(3):
            await appeal(context, f"Supporter {n}", f"s{n}@example.org", ["email", "fax"])
        await sign_in(client, ANA)
        page = await client.get("/operator?channel=fax")
        assert re.search(r'formaction="/operator/bulk/cancel" data-count="6"', page.text)
        cancelled = await client.post(
            "/operator/bulk/cancel", data={"csrf": csrf_of(page), "channel": "fax"}
        )
        assert cancelled.headers["location"] == "/operator?channel=fax&done=bulk-cancel%3A6"
        shown = await client.get(cancelled.headers["location"])
        assert "6 deliveries in this selection are cancelled" in shown.text
        log = (await client.get("/api/deliveries?limit=50")).json()["deliveries"]
        by_channel = {(d["channel"], d["status"]) for d in log}
        assert by_channel == {("fax", "cancelled"), ("email", "queued")}
        retried = await client.post(
            "/operator/bulk/retry",
            data={"csrf": csrf_of(shown), "channel": "fax", "status": "cancelled"},
        )
        assert retried.headers["location"].endswith("done=bulk-retry%3A6")
        log = (await client.get("/api/deliveries?limit=50")).json()["deliveries"]
        bad = await client.post(
            "/operator/bulk/cancel", data={"csrf": csrf_of(shown), "status": "lost"}
        )
        dashboard = await client.get("/operator")
    assert {d["status"] for d in log} == {"queued"}
    assert bad.status_code == 422
    # Reading the log through the API is a view of the deliveries, recorded too.
    assert audit_lines(dashboard)[:4] == [
        "T · ana viewed 12 deliveries (all deliveries) from 127.0.0.1",
        "T · ana retried 6 deliveries (status=cancelled, channel=fax) from 127.0.0.1",
        "T · ana viewed 12 deliveries (all deliveries) from 127.0.0.1",
        "T · ana cancelled 6 deliveries (channel=fax) from 127.0.0.1",
    ]


async def test_the_detail_page_retries_and_cancels_and_says_what_it_did(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(named(tmp_path, campaigns_dir)) as (app, client):
        await appeal(context_of(app), "Ana Lima", "ana@example.org", ["email"])
        await sign_in(client, ANA)
        entry = (await client.get("/api/deliveries")).json()["deliveries"][0]
        detail = await client.get(f"/operator/deliveries/{entry['id']}")
        assert f'action="/operator/deliveries/{entry["id"]}/cancel"' in detail.text
        assert TIME.search(detail.text)
        done = await client.post(
            f"/operator/deliveries/{entry['id']}/cancel",
            data={"csrf": csrf_of(detail), "from": "detail"},
        )
        location = f"/operator/deliveries/{entry['id']}?done=cancel%3A{entry['id']}"
        assert done.headers["location"] == location
        after = await client.get(done.headers["location"])
    assert f"Delivery {entry['id']} is cancelled: it will not be sent." in after.text
    assert 'state-cancelled">cancelled' in after.text
    assert "/retry" in after.text and "/cancel" not in after.text.split("<h2>Attempts")[0]


async def test_every_filtered_delivery_exports_as_csv_and_json(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(named(tmp_path, campaigns_dir)) as (app, client):
        context = context_of(app)
        for n in range(3):
            await appeal(context, f"Supporter {n}", f"s{n}@example.org", ["email", "fax"])
        ana = {"Authorization": f"Bearer {ANA}"}
        as_csv = await client.get("/api/deliveries/export?channel=email&format=csv", headers=ana)
        as_json = await client.get("/api/deliveries/export?format=json", headers=ana)
        wrong = await client.get("/api/deliveries/export?format=xls", headers=ana)
        nobody = await client.get("/api/deliveries/export")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="deliveries.csv"' in as_csv.headers["content-disposition"]
    assert [r["channel"] for r in rows] == ["email"] * 6
    assert all(TIME.fullmatch(r["updated_at"]) for r in rows)
    assert len(as_json.json()["deliveries"]) == 12
    assert wrong.status_code == 422 and wrong.json()["error"] == {
        "status": 422,
        "field": "format",
        "message": "format 'xls' is not one of: csv, json",
    }
    assert nobody.status_code == 401


async def test_the_supporter_list_searches_exports_and_leaves_out_the_forgotten(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(named(tmp_path, campaigns_dir)) as (app, client):
        context = context_of(app)
        await appeal(context, "Ana Lima", "ana@example.org", ["email"])
        await appeal(context, "Ana Lima", "ana@example.org", ["fax"])
        await appeal(context, "Li Wei", "li.wei@example.net", ["email"])
        gone = await appeal(context, "Maria Garcia", "maria@example.com", ["email"])
        for entry in await context.service.store.list_deliveries(appeal_id=gone):
            await cancel_delivery(context.service, entry.id, by="test")
        await forget_appeal(context.service, gone, link_token(context.service, "forget", gone))
        await sign_in(client, LI)
        everyone = await client.get("/operator/supporters")
        found = await client.get("/operator/supporters?q=EXAMPLE.NET")
        nothing = await client.get("/operator/supporters?q=%25")
        exported = await client.get("/api/supporters?format=csv&search=ana")
        as_json = await client.get("/api/supporters")
        dashboard = await client.get("/operator")
    assert "Ana Lima" in everyone.text and "Li Wei" in everyone.text
    assert "Maria" not in everyone.text and "maria@" not in everyone.text
    assert "Li Wei" in found.text and "Ana Lima" not in found.text
    assert "No supporters match" in nothing.text
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["name"], row["appeals"], row["contact_ok"]) == ("Ana Lima", "2", "True")
    assert {s["email"] for s in as_json.json()["supporters"]} == {
        "ana@example.org",
        "li.wei@example.net",
    }
    assert audit_lines(dashboard)[:5] == [
        "T · li exported 2 supporters as json (all campaigns) from 127.0.0.1",
        "T · li exported 1 supporters as csv (search='ana') from 127.0.0.1",
        "T · li viewed the supporter list: 0 supporters (search='%') from 127.0.0.1",
        "T · li viewed the supporter list: 1 supporters (search='EXAMPLE.NET') from 127.0.0.1",
        "T · li viewed the supporter list: 2 supporters (all campaigns) from 127.0.0.1",
    ]


async def test_totals_and_chart_are_drawn_for_the_live_log_whatever_the_status_filter(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    """The dashboard fetches /operator/summary as the log moves; filtered to failed, the
    chart still shows what was delivered (it said "Nothing delivered yet")."""
    settings = named(tmp_path, campaigns_dir)
    refused = Faults(refuse=frozenset({"english@mail.gov.cn"}))
    async with (
        running_app(settings) as (app, client),
        Sandbox(tmp_path / "box", email_faults=refused, channels=["email"]) as box,
    ):
        context = context_of(app)
        await sign_in(client, ANA)
        before = await client.get("/operator/summary?status=failed")
        await appeal(context, "Ana Lima", "ana@example.org", ["email"])
        await send_all(context, box, campaigns_dir)
        after = await client.get("/operator/summary?status=failed")
    assert "Nothing delivered in the last 48 hours." in before.text
    assert '<strong class="actions-total">0</strong>' in before.text
    assert '<strong class="actions-total">0</strong>' in after.text  # the sandbox's: apart
    assert '<strong class="rehearsal-total">1</strong>' in after.text
    assert "■ email 1" in after.text and "whatever the status filter" in after.text
    assert 'data-count="1"' in after.text  # one failed delivery to retry
