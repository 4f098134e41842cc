"""The three fax providers (Phaxio, Sinch, Telnyx) over real HTTP: the sandbox gateway
speaks each one's API, the adapters and the web service speak to it over loopback sockets.

Submit, status, callbacks (valid, forged, replayed, late), the signed media link Telnyx
fetches, and the reconciliation of a send whose outcome is unknown, for each dialect.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pypdf import PdfReader

from dispatcher.channels.base import PermanentError, SendResult, TransientError
from dispatcher.channels.fax import MediaLinks, fax_link_key
from dispatcher.channels.registry import fax_provider
from dispatcher.channels.sinch import SinchAdapter, callback_token
from dispatcher.channels.telnyx import TelnyxAdapter, verify_telnyx_signature
from dispatcher.models import (
    AttemptOutcome,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    utcnow,
)
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.sandbox.fax_telnyx import telnyx_signature
from dispatcher.settings import SandboxSettings, WorkerSettings
from dispatcher.store import Store
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN, free_port
from tests.integration.test_adapters import delivery
from tests.waiting import eventually
from tests.web.conftest import (
    CALLBACK_TOKEN,
    OPERATOR_TOKEN,
    context_of,
    live_server,
    running_app,
    web_settings,
)

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
SECRET_KEY = "a-long-random-secret-key-for-the-fax-tests"
FAX_BODY = {
    "supporter": {"name": "Ana Lima", "email": "ana@example.org"},
    "targets": ["cui-tiankai"],
    "channels": ["fax"],
}


def public_key_of(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


async def row_of(client: httpx.AsyncClient, delivery_id: int) -> dict[str, Any]:
    page = await client.get(
        "/api/deliveries?include=attempts", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    return next(d for d in page.json()["deliveries"] if d["id"] == delivery_id)


async def claim_fax(client: httpx.AsyncClient, store: Store) -> ClaimedDelivery:
    assert (await client.post(APPEALS, json=FAX_BODY)).status_code == 202
    [claimed] = await store.claim_due_deliveries("w", limit=1, lease_seconds=60)
    return claimed


async def record_awaiting(store: Store, claimed: ClaimedDelivery, ref: str) -> None:
    update = DeliveryUpdate(
        claimed.id,
        DeliveryStatus.AWAITING_CONFIRMATION,
        next_attempt_at=utcnow(),
        provider_ref=ref,
        attempt_outcome=AttemptOutcome.ACCEPTED,
    )
    await store.record_outcomes("w", [update])


def dialect_settings(dialect: str, base: str, box: Sandbox, **fax: Any) -> dict[str, Any]:
    """Settings for a web service whose fax goes to ``box`` in ``dialect``."""
    options: dict[str, Any] = {"provider": dialect, **fax}
    if dialect == "phaxio":
        options |= {"callback_url": f"{base}/webhooks/fax", "callback_token": CALLBACK_TOKEN}
    if dialect == "telnyx":
        options["webhook_public_key"] = box.fax_webhook_public_key
    return {
        "fax": options,
        "public_url": base,
        "secret_key": SECRET_KEY,
        "worker": WorkerSettings(idle_seconds=0.05),
        "sandbox": SandboxSettings(
            smtp_port=9, fax_port=box.fax_port, x_port=9, directory=box.directory
        ),
    }


# --- the whole path, per dialect ------------------------------------------------------


@pytest.mark.parametrize("dialect", ["phaxio", "sinch", "telnyx"])
async def test_each_dialect_delivers_a_fax_end_to_end(
    dialect: str, tmp_path: Path, campaigns_dir: Path
) -> None:
    """A supporter's fax goes out through the provider's API (the sandbox speaking it),
    the gateway calls back to the live service, and the delivery is delivered once.
    Telnyx fetches the PDF from the signed media link the fax was sent with."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with Sandbox(
        tmp_path / "box",
        channels=["fax"],
        fax_dialect=dialect,
        fax_transmit_seconds=0.3,
        fax_callback_token=CALLBACK_TOKEN,
    ) as box:
        settings = web_settings(tmp_path, campaigns_dir, **dialect_settings(dialect, base, box))
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            live_server(app, port=port),
            httpx.AsyncClient(base_url=base) as client,
        ):
            assert (await client.post(APPEALS, json=FAX_BODY)).status_code == 202

            async def settled() -> dict[str, Any] | None:
                row = await row_of(client, 1)
                return row if row["status"] == "delivered" and box.fax_callback_answers else None

            row = await eventually(settled, what="the fax delivered, its callback answered")
        answers = list(box.fax_callback_answers)
    assert row["status"] == "delivered", row
    [fax] = box.faxes
    assert fax.status == "success" and fax.to == "+12024952138"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(fax.pdf)).pages)
    assert "Ana Lima" in text  # the letter itself went (for Telnyx: fetched by its link)
    assert [status for _, status, _ in answers] == [200]
    assert [a["outcome"] for a in row["attempts_detail"]] == ["delivered"]
    assert row["attempts_detail"][0]["provider_ref"] == fax.ref


# --- Sinch: unsigned callbacks are only triggers --------------------------------------


async def test_sinch_callbacks_are_triggers_forged_replayed_and_late_change_nothing(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with Sandbox(
        # Two seconds on the line: long enough that "still on its way" holds on a busy
        # machine (0.3 s did not, once); the test waits for the end anyway.
        tmp_path / "box",
        channels=["fax"],
        fax_dialect="sinch",
        fax_transmit_seconds=2.0,
    ) as box:
        # The sandbox's own callback goes to a closed port: this test sends them itself.
        overrides = dialect_settings("sinch", "http://127.0.0.1:9", box)
        settings = web_settings(tmp_path, campaigns_dir, **overrides)
        async with running_app(settings) as (app, client):
            store = context_of(app).service.store
            claimed = await claim_fax(client, store)
            adapter = fax_provider("sinch").build(settings, True)
            try:
                accepted = await adapter.send(claimed)
            finally:
                await adapter.aclose()
            assert accepted.provider_ref is not None
            await record_awaiting(store, claimed, accepted.provider_ref)
            key = fax_link_key(settings)
            path = f"/webhooks/fax/sinch/{callback_token(key, claimed.id)}"
            claims_done = json.dumps(
                {
                    "event": "FAX_COMPLETED",
                    "fax": {"id": accepted.provider_ref, "status": "COMPLETED"},
                }
            )
            # Forged: a token we did not make, for this delivery or another.
            for token in (f"{claimed.id}.{'0' * 40}", f"{claimed.id}", "1.x", "abc"):
                forged = await client.post(f"/webhooks/fax/sinch/{token}", content=claims_done)
                assert forged.status_code == 404
            # Ours, but Sinch says the fax is still on its way: what the body says is not
            # believed, nothing changes.
            early = await client.post(path, content=claims_done)
            assert early.status_code == 200 and early.json() == {"received": True, "changed": False}
            assert (await row_of(client, claimed.id))["status"] == "awaiting_confirmation"

            def transmitted() -> bool:
                box.delivered_counts()  # brings the sandbox's faxes up to date
                return box.faxes[0].status == "success"

            await eventually(transmitted, what="the sandbox gateway finishing the fax")
            done = await client.post(path, content=b"not even JSON")
            assert done.json() == {"received": True, "changed": True}
            row = await row_of(client, claimed.id)
            assert row["status"] == "delivered"
            # Replayed, and late: nothing moves a settled delivery.
            assert (await client.post(path, content=claims_done)).json()["changed"] is False
            failed = json.dumps({"event": "FAX_COMPLETED", "fax": {"status": "FAILURE"}})
            assert (await client.post(path, content=failed)).json()["changed"] is False
            assert (await row_of(client, claimed.id))["status"] == "delivered"


# --- Telnyx: signed webhooks ----------------------------------------------------------


def telnyx_event(fax_id: str, event_type: str, **payload: Any) -> bytes:
    return json.dumps(
        {
            "data": {
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "record_type": "event",
                "payload": {"fax_id": fax_id, "status": event_type.split(".", 1)[1], **payload},
            },
            "meta": {"attempt": 1},
        }
    ).encode()


def telnyx_headers(key: Ed25519PrivateKey, body: bytes, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "telnyx-timestamp": timestamp,
        "telnyx-signature-ed25519": telnyx_signature(key, timestamp, body),
        "Content-Type": "application/json",
    }


async def test_telnyx_webhooks_are_verified_forged_stale_replayed_and_late_change_nothing(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    fax_settings = {"provider": "telnyx", "webhook_public_key": public_key_of(key)}
    settings = web_settings(tmp_path, campaigns_dir, fax=fax_settings, secret_key=SECRET_KEY)
    async with running_app(settings) as (app, client):
        store = context_of(app).service.store
        claimed = await claim_fax(client, store)
        ref = str(uuid.uuid4())
        await record_awaiting(store, claimed, ref)
        delivered = telnyx_event(ref, "fax.delivered", page_count=2)

        refused = [
            ({}, delivered),  # unsigned
            (telnyx_headers(stranger, delivered), delivered),  # someone else's key
            (telnyx_headers(key, delivered), delivered.replace(b"delivered", b"failed")),
            (telnyx_headers(key, delivered, at=time.time() - 600), delivered),  # stale
            (telnyx_headers(key, delivered, at=time.time() + 600), delivered),  # from the future
        ]
        for headers, body in refused:
            answer = await client.post("/webhooks/fax", content=body, headers=headers)
            assert answer.status_code == 401, answer.text
        assert (await row_of(client, claimed.id))["status"] == "awaiting_confirmation"

        queued = telnyx_event(ref, "fax.queued")
        answer = await client.post(
            "/webhooks/fax", content=queued, headers=telnyx_headers(key, queued)
        )
        assert answer.json() == {"received": True, "changed": False}

        headers = telnyx_headers(key, delivered)
        ok = await client.post("/webhooks/fax", content=delivered, headers=headers)
        assert ok.status_code == 200 and ok.json() == {"received": True, "changed": True}
        row = await row_of(client, claimed.id)
        assert row["status"] == "delivered"
        assert "confirmed by webhook" in (row["attempts_detail"][-1]["response_summary"] or "")
        replay = await client.post("/webhooks/fax", content=delivered, headers=headers)
        assert replay.json()["changed"] is False
        late = telnyx_event(ref, "fax.failed", failure_reason="user_busy")
        answer = await client.post("/webhooks/fax", content=late, headers=telnyx_headers(key, late))
        assert answer.json()["changed"] is False
        assert (await row_of(client, claimed.id))["status"] == "delivered"


async def test_a_telnyx_failure_webhook_is_classified(tmp_path: Path, campaigns_dir: Path) -> None:
    key = Ed25519PrivateKey.generate()
    fax_settings = {"provider": "telnyx", "webhook_public_key": public_key_of(key)}
    settings = web_settings(tmp_path, campaigns_dir, fax=fax_settings, secret_key=SECRET_KEY)
    async with running_app(settings) as (app, client):
        store = context_of(app).service.store
        claimed = await claim_fax(client, store)
        ref = str(uuid.uuid4())
        await record_awaiting(store, claimed, ref)
        body = telnyx_event(ref, "fax.failed", failure_reason="receiver_unallocated_number")
        answer = await client.post("/webhooks/fax", content=body, headers=telnyx_headers(key, body))
        assert answer.json()["changed"] is True
        row = await row_of(client, claimed.id)
        assert row["status"] == "failed"
        assert row["last_error"]["code"] == "receiver_unallocated_number"
        assert "number not in service" in row["last_error"]["message"]


def test_telnyx_signature_matches_one_computed_independently_by_node() -> None:
    """Ed25519 is deterministic: Node's own crypto, given the same key, the documented
    "{timestamp}|{body}" and nothing of ours, makes the same signature, and ours accepts it."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    timestamp, body = str(int(time.time())), b'{"data":{"event_type":"fax.delivered"}}'
    script = (
        "const c=require('crypto');"
        "const der=Buffer.concat([Buffer.from('302e020100300506032b657004220420','hex'),"
        "Buffer.from(process.argv[1],'base64')]);"
        "const k=c.createPrivateKey({key:der,format:'der',type:'pkcs8'});"
        "process.stdout.write(c.sign(null,Buffer.from(process.argv[2]+'|'+process.argv[3]),k)"
        ".toString('base64'));"
    )
    by_node = subprocess.run(
        [node, "-e", script, base64.b64encode(seed).decode(), timestamp, body.decode()],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert by_node == telnyx_signature(key, timestamp, body)
    assert verify_telnyx_signature(public_key_of(key), timestamp, body, by_node)
    assert not verify_telnyx_signature(public_key_of(key), timestamp, body + b" ", by_node)


# --- Telnyx: the signed media link ----------------------------------------------------


async def test_the_media_link_serves_the_fax_only_signed_unexpired_and_on_its_way(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    fax_settings = {
        "provider": "telnyx",
        "webhook_public_key": public_key_of(Ed25519PrivateKey.generate()),
    }
    settings = web_settings(tmp_path, campaigns_dir, fax=fax_settings, secret_key=SECRET_KEY)
    async with running_app(settings) as (app, client):
        store = context_of(app).service.store
        claimed = await claim_fax(client, store)
        await record_awaiting(store, claimed, str(uuid.uuid4()))
        links = MediaLinks(fax_link_key(settings), "")
        good = links.url(claimed.id)
        answer = await client.get(good)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.content)).pages)
        assert "Ana Lima" in text and "Cui Tiankai" in text
        token = good.rsplit("/", 1)[1]
        delivery_id, expires, mac = token.removesuffix(".pdf").split(".")
        other_key = MediaLinks(b"k" * 32, "").url(claimed.id)
        refused = [
            f"/webhooks/fax/media/{delivery_id}.pdf",  # unsigned
            other_key,  # signed by someone else
            f"/webhooks/fax/media/{delivery_id}.{int(expires) + 60}.{mac}.pdf",  # longer life
            f"/webhooks/fax/media/{int(delivery_id) + 1}.{expires}.{mac}.pdf",  # another fax
            links.url(claimed.id, now=time.time() - 7200),  # expired
        ]
        for url in refused:
            assert (await client.get(url)).status_code == 404, url
        # Once the fax has gone out, the link shows nothing any more.
        update = DeliveryUpdate(
            claimed.id,
            DeliveryStatus.DELIVERED,
            next_attempt_at=utcnow(),
            attempt_outcome=AttemptOutcome.DELIVERED,
        )
        await store.settle_awaiting(update, (await row_of(client, claimed.id))["provider_ref"])
        assert (await row_of(client, claimed.id))["status"] == "delivered"
        assert (await client.get(good)).status_code == 404


# --- adapters against each dialect: status classification and reconciliation ---------

NUMBER = "+12024952138"
REFUSED = "+12025550199"


def sinch_adapter(box: Sandbox) -> SinchAdapter:
    return SinchAdapter(
        base_url=box.fax_base_url,
        project_id="p1",
        key_id="k",
        key_secret="s",
        header_text="Urgent appeal",
        from_number="+12025550100",
        public_url="http://127.0.0.1:9",
        link_key=b"k" * 32,
        timeout=2,
    )


@contextlib.asynccontextmanager
async def pdf_server() -> AsyncIterator[str]:
    """A loopback server answering every GET with a small PDF (a media link's target)."""

    async def pdf(request: web.Request) -> web.Response:
        return web.Response(body=b"%PDF-1.4\n%sandbox\n", content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/{tail:.*}", pdf)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def telnyx_adapter(box: Sandbox, media_base: str = "http://127.0.0.1:9") -> TelnyxAdapter:
    return TelnyxAdapter(
        base_url=box.fax_base_url,
        api_key="key",
        connection_id="c1",
        from_number="+12025550100",
        media=MediaLinks(b"k" * 32, media_base),
        webhook_url=None,
        timeout=2,
    )


ADAPTERS: dict[str, Callable[[Sandbox], SinchAdapter | TelnyxAdapter]] = {
    "sinch": sinch_adapter,
    "telnyx": telnyx_adapter,
}


async def until_final(
    adapter: SinchAdapter | TelnyxAdapter, claimed: ClaimedDelivery
) -> Exception | SendResult:

    async def final() -> Exception | SendResult | None:
        try:
            result = await adapter.check(claimed)
        except (TransientError, PermanentError) as exc:
            return exc
        return result if result.confirmed else None

    return await eventually(final, what="the fax reaching a final status", every=0.01)


@pytest.mark.parametrize("dialect", ["sinch", "telnyx"])
async def test_status_busy_is_transient_and_a_bad_number_permanent(
    dialect: str, tmp_path: Path
) -> None:
    faults = Faults(busy_first=1, refuse=frozenset({REFUSED}))
    async with (
        pdf_server() as media,
        Sandbox(
            tmp_path / "box",
            channels=["fax"],
            fax_dialect=dialect,
            fax_faults=faults,
            fax_transmit_seconds=0.1,
        ) as box,
    ):
        adapter = sinch_adapter(box) if dialect == "sinch" else telnyx_adapter(box, media)
        try:
            busy = delivery(Channel.FAX, delivery_id=1, address=NUMBER)
            bad = delivery(Channel.FAX, delivery_id=2, address=REFUSED)
            results = []
            for claimed in (busy, bad):
                sent = await adapter.send(claimed)
                assert not sent.confirmed and sent.provider_ref
                results.append(
                    await until_final(
                        adapter, dataclasses.replace(claimed, provider_ref=sent.provider_ref)
                    )
                )
        finally:
            await adapter.aclose()
    first, second = results
    assert type(first) is TransientError, first
    assert "busy" in str(first).lower()
    assert type(second) is PermanentError, second


@pytest.mark.parametrize("dialect", ["sinch", "telnyx"])
async def test_an_unknown_outcome_is_reconciled_by_listing_the_faxes_to_the_number(
    dialect: str, tmp_path: Path
) -> None:
    """The gateway took the fax but the answer never came: the next try finds it among
    the faxes to that number (marked with the delivery), and another delivery's fax to
    the same number is not taken for it."""
    async with Sandbox(
        tmp_path / "box",
        channels=["fax"],
        fax_dialect=dialect,
        fax_faults=Faults(drop_first=1),
        fax_transmit_seconds=0.1,
    ) as box:
        adapter = ADAPTERS[dialect](box)
        try:
            ours = delivery(Channel.FAX, delivery_id=11, address=NUMBER)
            with pytest.raises(TransientError) as lost:
                await adapter.send(ours)
            assert lost.value.outcome_unknown
            other = delivery(Channel.FAX, delivery_id=12, address=NUMBER)
            await adapter.send(other)
            found = await adapter.find_earlier(
                dataclasses.replace(ours, earlier_outcome_unknown=True)
            )
            nobody = await adapter.find_earlier(
                delivery(Channel.FAX, delivery_id=13, address=NUMBER)
            )
        finally:
            await adapter.aclose()
    assert found is not None and found.provider_ref == box.faxes[0].ref
    assert nobody is None
    assert len(box.faxes) == 2
