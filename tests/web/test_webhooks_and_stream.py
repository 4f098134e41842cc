"""Fax status callbacks (signed, Phaxio-compatible) and the live delivery stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx

from dispatcher.channels.phaxio import phaxio_signature
from dispatcher.models import AttemptOutcome, DeliveryStatus, DeliveryUpdate, utcnow
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.settings import SandboxSettings, WorkerSettings
from dispatcher.store import Store
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN, free_port
from tests.waiting import eventually
from tests.web.conftest import (
    CALLBACK_TOKEN,
    CALLBACK_URL,
    OPERATOR_TOKEN,
    context_of,
    live_server,
    running_app,
    web_settings,
)

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
FAX_REF = "4242"


async def fax_awaiting_confirmation(client: httpx.AsyncClient, store: Store) -> int:
    """An appeal's fax to the ambassador, sent and awaiting the gateway's confirmation."""
    body = {
        "supporter": {"name": "Ana Lima", "email": "ana@example.org"},
        "targets": ["cui-tiankai"],
        "channels": ["fax"],
    }
    assert (await client.post(APPEALS, json=body)).status_code == 202
    [claimed] = await store.claim_due_deliveries("w", limit=1, lease_seconds=60)
    await store.record_outcomes(
        "w",
        [
            DeliveryUpdate(
                claimed.id,
                DeliveryStatus.AWAITING_CONFIRMATION,
                next_attempt_at=utcnow(),
                provider_ref=FAX_REF,
                attempt_outcome=AttemptOutcome.ACCEPTED,
            )
        ],
    )
    return claimed.id


def fax_fields(status: str, **errors: Any) -> dict[str, str]:
    fax = {"id": int(FAX_REF), "status": status, "direction": "sent", **errors}
    return {
        "fax": json.dumps(fax),
        "success": "true" if status == "success" else "false",
        "is_test": "true",
        "direction": "sent",
    }


def signed(fields: dict[str, str], files: dict[str, bytes] | None = None) -> dict[str, str]:
    return {
        "X-Phaxio-Signature": phaxio_signature(CALLBACK_TOKEN, CALLBACK_URL, fields, files or {})
    }


async def status_of(client: httpx.AsyncClient, delivery_id: int) -> dict[str, Any]:
    page = await client.get(
        "/api/deliveries?include=attempts", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    return next(d for d in page.json()["deliveries"] if d["id"] == delivery_id)


async def test_signed_callback_settles_the_fax_and_replays_change_nothing(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        delivery_id = await fax_awaiting_confirmation(client, context_of(app).service.store)
        fields = fax_fields("success")
        ok = await client.post("/webhooks/fax", data=fields, headers=signed(fields))
        assert ok.status_code == 200 and ok.json() == {"received": True, "changed": True}
        row = await status_of(client, delivery_id)
        assert row["status"] == "delivered"
        assert [a["outcome"] for a in row["attempts_detail"]] == ["delivered"]
        replay = await client.post("/webhooks/fax", data=fields, headers=signed(fields))
        assert replay.status_code == 200 and replay.json()["changed"] is False
        # A late "failure" for the same fax does not move a settled delivery back.
        late = fax_fields("failure", error_type="lineErrorType", error_message="Busy")
        out_of_order = await client.post("/webhooks/fax", data=late, headers=signed(late))
        assert out_of_order.status_code == 200 and out_of_order.json()["changed"] is False
        assert (await status_of(client, delivery_id))["status"] == "delivered"


async def test_failure_callbacks_are_classified_like_polling(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        delivery_id = await fax_awaiting_confirmation(client, context_of(app).service.store)
        busy = fax_fields(
            "failure", error_type="lineErrorType", error_code="34", error_message="Busy"
        )
        response = await client.post("/webhooks/fax", data=busy, headers=signed(busy))
        assert response.json()["changed"] is True
        row = await status_of(client, delivery_id)
        assert row["status"] == "queued"  # busy line: retried later
        assert row["last_error"] == {
            "class": "TransientError",
            "code": "34",
            "message": "fax failed: Busy (lineErrorType)",
        }


async def test_forged_or_tampered_callbacks_are_refused(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        delivery_id = await fax_awaiting_confirmation(client, context_of(app).service.store)
        fields = fax_fields("success")
        missing = await client.post("/webhooks/fax", data=fields)
        assert missing.status_code == 401
        assert missing.json()["error"]["message"] == "missing or invalid X-Phaxio-Signature"
        wrong_key = {"X-Phaxio-Signature": phaxio_signature("guess", CALLBACK_URL, fields, {})}
        assert (
            await client.post("/webhooks/fax", data=fields, headers=wrong_key)
        ).status_code == 401
        tampered = dict(fields, fax=fields["fax"].replace("4242", "4243"))
        assert (
            await client.post("/webhooks/fax", data=tampered, headers=signed(fields))
        ).status_code == 401
        # Multipart with a file part: changing the file's bytes breaks the signature.
        files_signed = signed(fields, {"file": b"%PDF-1.4 original"})
        tampered_file = await client.post(
            "/webhooks/fax",
            data=fields,
            files={"file": ("fax.pdf", b"%PDF-1.4 changed", "application/pdf")},
            headers=files_signed,
        )
        assert tampered_file.status_code == 401
        assert (await status_of(client, delivery_id))["status"] == "awaiting_confirmation"
        genuine_file = await client.post(
            "/webhooks/fax",
            data=fields,
            files={"file": ("fax.pdf", b"%PDF-1.4 original", "application/pdf")},
            headers=files_signed,
        )
        assert genuine_file.status_code == 200
        assert (await status_of(client, delivery_id))["status"] == "delivered"


async def test_callbacks_are_disabled_without_url_and_token(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    settings = web_settings(tmp_path, campaigns_dir, fax={})
    async with running_app(settings) as (_, client):
        fields = fax_fields("success")
        response = await client.post("/webhooks/fax", data=fields, headers=signed(fields))
        assert response.status_code == 404


async def test_stream_sends_delivery_changes_as_server_sent_events(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    settings = web_settings(tmp_path, campaigns_dir)
    async with running_app(settings) as (app, _), live_server(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            async with http.stream("GET", "/api/deliveries/stream", headers=headers) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert await anext(lines) == "retry: 2000"
                body = {
                    "supporter": {"name": "Ana", "email": "ana@example.org"},
                    "channels": ["email"],
                }
                created = await http.post(APPEALS, json=body)
                assert created.status_code == 202
                # Each event as the operator page reads it: its fields up to a blank line.
                events: list[dict[str, str]] = []
                fields: dict[str, str] = {}
                while len(events) < 2:
                    line = await asyncio.wait_for(anext(lines), timeout=10)
                    if line:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                    elif "data" in fields:
                        events.append(fields)
                        fields = {}
        assert [e["event"] for e in events] == ["delivery", "delivery"]
        changes = [json.loads(e["data"]) for e in events]
        assert [e["id"].partition("-")[0] for e in events] == [str(c["id"]) for c in changes]
        assert sorted((c["target"], c["status"]) for c in changes) == [
            ("cui-tiankai", "queued"),
            ("xi-jinping", "queued"),
        ]


async def test_a_failure_callback_for_an_earlier_fax_does_not_touch_the_newer_one(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    """Callbacks out of order across attempts: attempt 1's fax reports failure after the
    delivery was sent again (fax 4242, awaiting confirmation). Only 4242's callback counts."""
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        delivery_id = await fax_awaiting_confirmation(client, context_of(app).service.store)
        stale = fax_fields("failure", error_type="lineErrorType", error_message="Busy")
        stale["fax"] = json.dumps({**json.loads(stale["fax"]), "id": int(FAX_REF) - 1})
        ignored = await client.post("/webhooks/fax", data=stale, headers=signed(stale))
        assert ignored.status_code == 200 and ignored.json()["changed"] is False
        assert (await status_of(client, delivery_id))["status"] == "awaiting_confirmation"
        fields = fax_fields("success")
        settled = await client.post("/webhooks/fax", data=fields, headers=signed(fields))
        assert settled.json()["changed"] is True
        assert (await status_of(client, delivery_id))["status"] == "delivered"


async def test_a_callback_before_the_gateways_answer_changes_nothing_and_the_fax_counts_once(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    """The gateway calls back (success) before it answers the submit: the delivery is not
    yet awaiting that fax, so the callback changes nothing; the answer, then the poll or
    the repeated callback, settle it once. Real gateway, real worker, real HTTP both ways."""
    port = free_port()
    callback_url = f"http://127.0.0.1:{port}/webhooks/fax"
    faults = Faults(early_callback_first=1)
    async with Sandbox(
        tmp_path / "box",
        channels=["fax"],
        fax_faults=faults,
        fax_callback_token=CALLBACK_TOKEN,
        fax_transmit_seconds=0.2,
    ) as box:
        settings = web_settings(
            tmp_path,
            campaigns_dir,
            fax={"callback_url": callback_url, "callback_token": CALLBACK_TOKEN},
            worker=WorkerSettings(idle_seconds=0.05),
            sandbox=SandboxSettings(
                smtp_port=9, fax_port=box.fax_port, x_port=9, directory=box.directory
            ),
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            live_server(app, port=port) as base,
            httpx.AsyncClient(base_url=base) as client,
        ):
            body = {
                "supporter": {"name": "Ana Lima", "email": "ana@example.org"},
                "targets": ["cui-tiankai"],
                "channels": ["fax"],
            }
            assert (await client.post(APPEALS, json=body)).status_code == 202
            delivery_id = 1  # the first delivery of a new database

            async def settled() -> dict[str, Any] | None:
                row = await status_of(client, delivery_id)
                done = row["status"] == "delivered" and len(box.fax_callback_answers) == 2
                return row if done else None

            row = await eventually(settled, what="the fax delivered, both callbacks answered")
            report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
        answers = list(box.fax_callback_answers)
    assert row["status"] == "delivered" and len(box.faxes) == 1
    early, repeated = answers
    assert early == (1, 200, {"received": True, "changed": False})
    assert repeated[:2] == (1, 200)
    assert [a["outcome"] for a in row["attempts_detail"]] == ["delivered"]
    assert (report["actions"], report["rehearsal"]["delivered"]) == (0, 1)  # the sandbox's


async def test_a_callback_that_overtakes_the_record_of_the_answer_still_settles_the_fax(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    """The gateway's callback (naming its delivery in the fax's tags) arrives while the
    worker has not yet recorded the gateway's answer: it is answered at once, and the fax
    is settled as soon as the answer is recorded, not a status poll (a minute) later."""
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        store = context_of(app).service.store
        body = {
            "supporter": {"name": "Ana Lima", "email": "ana@example.org"},
            "targets": ["cui-tiankai"],
            "channels": ["fax"],
        }
        assert (await client.post(APPEALS, json=body)).status_code == 202
        [claimed] = await store.claim_due_deliveries("w", limit=1, lease_seconds=60)
        fields = fax_fields("success")
        fax = {**json.loads(fields["fax"]), "tags": {"delivery_id": str(claimed.id)}}
        fields["fax"] = json.dumps(fax)
        early = await client.post("/webhooks/fax", data=fields, headers=signed(fields))
        assert early.json() == {"received": True, "changed": False}
        accepted = DeliveryUpdate(
            claimed.id,
            DeliveryStatus.AWAITING_CONFIRMATION,
            next_attempt_at=utcnow() + dt.timedelta(minutes=1),  # the next status poll
            provider_ref=FAX_REF,
            attempt_outcome=AttemptOutcome.ACCEPTED,
            attempt=claimed.attempts,
        )
        await store.record_outcomes("w", [accepted])

        async def delivered() -> bool:
            return bool((await status_of(client, claimed.id))["status"] == "delivered")

        await eventually(delivered, what="the fax settled by the early callback", within=10)
