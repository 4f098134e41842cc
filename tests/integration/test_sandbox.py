"""The sandbox servers, exercised over real sockets with real client libraries."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiohttp import web

from dispatcher.sandbox import Faults, Sandbox, verify_phaxio_signature
from tests.waiting import eventually

# Non-ASCII on purpose: the sink must take 8-bit, UTF-8 mail as it comes.
SUBJECT = "Bitte handeln Sie – Ukraine"
BODY_WORD = "допоможіть"
BODY = f"Sehr geehrte Damen und Herren,\nбудь ласка, {BODY_WORD}.\n"
PDF = b"%PDF-1.4\n% sandbox test letter\n%%EOF\n"
OAUTH = (
    'OAuth oauth_consumer_key="ck", oauth_nonce="n", oauth_signature="sig%3D", '
    'oauth_signature_method="HMAC-SHA1", oauth_timestamp="1", oauth_token="t", '
    'oauth_version="1.0"'
)


def letter(to: str, subject: str = SUBJECT) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Zoë Supporter <zoe@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(BODY, cte="8bit")
    return message


def fax_form(to: str, **extra: str) -> dict[str, Any]:
    """httpx keyword arguments for a multipart ``POST /v2/faxes``."""
    return {
        "data": {"to": to, "header_text": "Appeal", "tag[delivery_id]": "d-1", **extra},
        "files": {"file": ("letter.pdf", PDF, "application/pdf")},
    }


async def poll_final(client: httpx.AsyncClient, fax_id: int) -> dict[str, Any]:
    """GET the fax until it has a final status."""

    async def final() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(f"/v2/faxes/{fax_id}")).json()["data"]
        return data if data["status"] in ("success", "failure") else None

    return await eventually(final, what=f"fax {fax_id} finishing", every=0.01)


@pytest.fixture
async def fax_box(tmp_path: Path) -> AsyncIterator[Sandbox]:
    faults = Faults(busy_first=1, refuse=frozenset({"+12025550100"}))
    async with Sandbox(
        tmp_path, channels=("fax",), fax_faults=faults, fax_transmit_seconds=0.05
    ) as box:
        yield box


# --- SMTP ---------------------------------------------------------------------


async def test_email_is_recorded_as_eml(tmp_path: Path) -> None:
    async with Sandbox(tmp_path, channels=("email",)) as box:
        # Credentials are optional and any are accepted.
        await aiosmtplib.send(
            letter("mp@example.org"),
            hostname="127.0.0.1",
            port=box.smtp_port,
            username="any",
            password="thing",
        )
        # A session still open at stop() is closed without leaving tasks behind.
        idle = aiosmtplib.SMTP(hostname="127.0.0.1", port=box.smtp_port)
        await idle.connect()

        assert box.delivered_counts()["email"] == 1
        assert box.emails[0]["Subject"] == SUBJECT
        assert BODY_WORD in box.emails[0].get_content()
        (eml,) = (tmp_path / "email").iterdir()
        assert eml.name == "00001-mp@example.org.eml"
        assert BODY_WORD.encode() in eml.read_bytes()
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await idle.noop()
    idle.close()


async def test_email_refused_recipient_and_injected_failure(tmp_path: Path) -> None:
    faults = Faults(fail_first=1, refuse=frozenset({"Blocked@Example.org"}))
    async with Sandbox(tmp_path, channels=("email",), email_faults=faults) as box:

        async def send(to: str) -> None:
            await aiosmtplib.send(letter(to), hostname="127.0.0.1", port=box.smtp_port)

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await send("blocked@example.org")
        assert refused.value.recipients[0].code == 550
        assert "sandbox: refused" in refused.value.recipients[0].message

        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await send("mp@example.org")
        assert failed.value.code == 451

        await send("mp@example.org")
        assert len(box.emails) == 1
        assert [p.name for p in (tmp_path / "email").iterdir()] == ["00001-mp@example.org.eml"]


# --- fax ----------------------------------------------------------------------


async def test_fax_transmits_and_pdf_is_written(fax_box: Sandbox, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=fax_box.fax_base_url, auth=("key", "secret")) as client:
        # The first number is refused and so does not use up the busy_first slot;
        # the second is the busy one and the third gets through.
        ids = []
        for number in ("+12025550100", "+12025550101", "+12025550102"):
            response = await client.post("/v2/faxes", **fax_form(number))
            assert response.status_code == 200
            assert response.json()["message"] == "Fax queued for sending"
            ids.append(response.json()["data"]["id"])
        assert ids == [1, 2, 3]
        assert (await client.get("/v2/faxes/3")).json()["data"]["status"] == "queued"

        refused, busy, sent = [await poll_final(client, fax_id) for fax_id in ids]

    assert refused["status"] == "failure"
    assert refused["error_type"] == "fatalErrorType"
    assert refused["error_message"] == "Phone number not operational"
    assert refused["recipients"][0]["error_code"] == refused["error_code"] is not None
    assert busy["status"] == "failure"
    assert busy["error_type"] == "lineErrorType"
    assert busy["error_message"] == "Busy"
    assert sent["status"] == "success"
    assert sent["error_type"] is None
    assert sent["tags"] == {"delivery_id": "d-1"}
    assert sent["recipients"][0]["phone_number"] == "+12025550102"
    assert sent["completed_at"] is not None

    assert fax_box.delivered_counts()["fax"] == 1
    assert fax_box.faxes[2].header_text == "Appeal"
    files = sorted(p.name for p in (tmp_path / "fax").iterdir())
    assert files == ["00001-+12025550102.json", "00001-+12025550102.pdf"]
    assert (tmp_path / "fax" / "00001-+12025550102.pdf").read_bytes() == PDF
    summary = json.loads((tmp_path / "fax" / "00001-+12025550102.json").read_text())
    assert summary["tags"] == {"delivery_id": "d-1"} and summary["status"] == "success"


async def test_fax_rejections_and_faults(tmp_path: Path) -> None:
    faults = Faults(rate_limit_first=1, fail_first=1, rate_limit_reset_seconds=7)
    box = Sandbox(tmp_path, channels=("fax",), fax_faults=faults, fax_transmit_seconds=60)
    async with box, httpx.AsyncClient(base_url=box.fax_base_url) as client:
        anonymous = await client.post("/v2/faxes", **fax_form("+12025550102"))
        assert anonymous.status_code == 401
        assert anonymous.json() == {"success": False, "message": "Invalid API credentials"}

        client.auth = httpx.BasicAuth("key", "secret")
        limited = await client.post("/v2/faxes", **fax_form("+12025550102"))
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "7"
        unavailable = await client.post("/v2/faxes", **fax_form("+12025550102"))
        assert unavailable.status_code == 503
        assert unavailable.json()["success"] is False

        bad_number = await client.post("/v2/faxes", **fax_form("202-555-0102"))
        assert bad_number.status_code == 422
        assert bad_number.json()["message"].startswith("Invalid phone number: 202-555-0102")
        not_pdf = await client.post(
            "/v2/faxes",
            data={"to": "+12025550102"},
            files={"file": ("letter.txt", b"hello", "text/plain")},
        )
        assert not_pdf.status_code == 422
        assert "PDF" in not_pdf.json()["message"]
        assert (await client.get("/v2/faxes/99")).status_code == 404

        # Left transmitting (60 s) with a callback: stop() must cancel both cleanly.
        pending = await client.post(
            "/v2/faxes", **fax_form("+12025550102", callback_url="http://127.0.0.1:9/cb")
        )
        assert pending.json()["data"]["id"] == 1
    assert box.faxes[0].status == "queued"
    assert box.delivered_counts()["fax"] == 0


async def test_fax_callback_is_signed(tmp_path: Path) -> None:
    received: asyncio.Queue[tuple[dict[str, str], str]] = asyncio.Queue()

    async def callback(request: web.Request) -> web.Response:
        # As Phaxio sends it: multipart/form-data whose parts are all plain fields.
        assert request.content_type == "multipart/form-data"
        form = await request.post()
        assert all(isinstance(value, str) for value in form.values())
        fields = {name: str(value) for name, value in form.items()}
        await received.put((fields, request.headers.get("X-Phaxio-Signature", "")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/phaxio", callback)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/phaxio?campaign=ua"
    try:
        async with (
            Sandbox(
                tmp_path,
                channels=("fax",),
                fax_transmit_seconds=0.05,
                fax_callback_token="callback-token",
            ) as box,
            httpx.AsyncClient(base_url=box.fax_base_url, auth=("key", "secret")) as client,
        ):
            await client.post("/v2/faxes", **fax_form("+12025550102", callback_url=url))
            fields, signature = await asyncio.wait_for(received.get(), timeout=2)
    finally:
        await runner.cleanup()

    assert verify_phaxio_signature("callback-token", url, fields, {}, signature)
    assert not verify_phaxio_signature("other-token", url, fields, {}, signature)
    assert fields["success"] == "true"
    assert fields["is_test"] == "true"
    assert fields["direction"] == "sent"
    fax = json.loads(fields["fax"])
    assert fax["id"] == 1 and fax["status"] == "success"
    assert fax["tags"] == {"delivery_id": "d-1"}


async def test_failing_callback_is_logged_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/cb"
    caplog.set_level(logging.WARNING, logger="dispatcher.sandbox")
    async with (
        Sandbox(tmp_path, channels=("fax",), fax_transmit_seconds=0.02) as box,
        httpx.AsyncClient(base_url=box.fax_base_url, auth=("key", "secret")) as client,
    ):
        await client.post("/v2/faxes", **fax_form("+12025550102", callback_url=dead_url))
        await eventually(
            lambda: any("callback" in r.getMessage() for r in caplog.records),
            what="the failed callback logged",
        )
        [failed] = [r for r in caplog.records if "callback" in r.getMessage()]
        assert failed.getMessage() == "sandbox fax: a callback failed"
        fields = vars(failed)  # the event's fields, as the log line shows them
        assert (fields["fax_id"], fields["url"]) == ("1", dead_url)
        assert "ConnectError" in fields["error"]
        # The gateway still answers after the failed callback.
        assert (await poll_final(client, 1))["status"] == "success"


# --- X --------------------------------------------------------------------------


async def test_x_api_accepts_and_rejects(tmp_path: Path) -> None:
    faults = Faults(
        rate_limit_first=1,
        fail_first=1,
        refuse=frozenset({"@Blocked"}),
        rate_limit_reset_seconds=30,
    )
    box = Sandbox(tmp_path, channels=("twitter",), x_faults=faults)
    async with box, httpx.AsyncClient(base_url=box.x_base_url) as client:

        async def tweet(text: str, auth: str = OAUTH) -> httpx.Response:
            return await client.post(
                "/2/tweets", json={"text": text}, headers={"Authorization": auth}
            )

        unauthorized = await tweet("hello", auth="Bearer abc")
        assert unauthorized.status_code == 401
        assert unauthorized.json() == {
            "title": "Unauthorized",
            "type": "about:blank",
            "status": 401,
            "detail": "Unauthorized",
        }

        limited = await tweet("hello")
        assert limited.status_code == 429
        assert limited.headers["x-rate-limit-remaining"] == "0"
        assert limited.headers["x-rate-limit-limit"] == "200"
        assert abs(int(limited.headers["x-rate-limit-reset"]) - (time.time() + 30)) <= 2
        assert (await tweet("hello")).status_code == 503

        created = await tweet("@MinisterX please act")
        assert created.status_code == 201
        data = created.json()["data"]
        assert data["id"].isdigit() and data["edit_history_tweet_ids"] == [data["id"]]
        assert data["text"] == "@MinisterX please act"

        duplicate = await tweet("@MinisterX please act")
        assert duplicate.status_code == 403
        assert duplicate.json()["detail"] == (
            "You are not allowed to create a Tweet with duplicate content."
        )
        refused = await tweet("hey @blocked please act")
        assert refused.status_code == 403
        assert refused.json()["detail"] == "You are not permitted to perform this action."
        empty = await tweet("")
        assert empty.status_code == 400
        assert empty.headers["Content-Type"].startswith("application/problem+json")

    assert box.delivered_counts()["twitter"] == 1
    lines = (tmp_path / "twitter" / "tweets.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [data["id"]]


async def test_x_dropped_connection_still_records_tweet(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, channels=("twitter",), x_faults=Faults(drop_first=1))
    async with box, httpx.AsyncClient(base_url=box.x_base_url) as client:
        auth = {"Authorization": OAUTH}
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/2/tweets", json={"text": "first"}, headers=auth)
        assert [t["text"] for t in box.tweets] == ["first"]

        second = await client.post("/2/tweets", json={"text": "second"}, headers=auth)
        assert second.status_code == 201
    assert len((tmp_path / "twitter" / "tweets.jsonl").read_text().splitlines()) == 2


# --- lifecycle ----------------------------------------------------------------------


async def test_taken_port_raises_and_leaves_nothing_running(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "00007-old.eml").write_bytes(b"old")
    async with Sandbox(tmp_path / "first") as first:
        second = Sandbox(tmp_path, x_port=first.x_port, clear=True)
        with pytest.raises(OSError):
            await second.start()
        # email and fax had started before X failed; they were closed again.
        with pytest.raises(RuntimeError):
            _ = second.smtp_port
        assert not (tmp_path / "email").exists()  # clear=True ran
