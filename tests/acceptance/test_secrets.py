"""No secret in any log line, page, API answer or metric: `dispatcher serve` (with its
worker) and `dispatcher demo` run with every secret set, providers pointed at the sandbox
on loopback (SMTP AUTH, the fax gateway's Basic auth, X's OAuth 1.0a, signed callbacks),
debug logs as JSON lines, and a tour of what a user, an operator and an attacker can ask
for. Every byte they wrote and answered is searched for each secret, and for the forms
the wire carries them in (base64 of SMTP AUTH and HTTP Basic)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx

from dispatcher.sandbox import Faults, Sandbox
from tests.conftest import OPEN_CAMPAIGN, free_port
from tests.waiting import eventually

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
SECRETS = {
    "DISPATCHER_OPERATOR_TOKEN": "op-token-4b1d9e2a",
    "DISPATCHER_SECRET_KEY": "form-key-77c0f3aa",
    "DISPATCHER_EMAIL__USERNAME": "relay-user-1e5c",
    "DISPATCHER_EMAIL__PASSWORD": "smtp-pass-9a3f06",
    "DISPATCHER_FAX__API_KEY": "fax-key-5d2e8b",
    "DISPATCHER_FAX__API_SECRET": "fax-secret-c41a7e",
    "DISPATCHER_FAX__CALLBACK_TOKEN": "callback-token-0f9b",
    "DISPATCHER_TWITTER__CONSUMER_KEY": "x-consumer-key-3c7a",
    "DISPATCHER_TWITTER__CONSUMER_SECRET": "x-consumer-secret-8e21",
    "DISPATCHER_TWITTER__ACCESS_TOKEN": "x-access-token-6b90",
    "DISPATCHER_TWITTER__ACCESS_TOKEN_SECRET": "x-access-secret-d4f2",
    "DISPATCHER_TWITTER__CLIENT_SECRET": "x-client-secret-71b3",
}
DATABASE_PASSWORD = "db-pass-2e6a9c"


def forbidden() -> dict[str, str]:
    """Each secret, and each encoding of one that a wire or a debug log could carry."""
    found = {name: value for name, value in SECRETS.items() if "USERNAME" not in name}
    found["DATABASE_PASSWORD"] = DATABASE_PASSWORD

    def b64(raw: str) -> str:
        return base64.b64encode(raw.encode()).decode()

    user, password = SECRETS["DISPATCHER_EMAIL__USERNAME"], SECRETS["DISPATCHER_EMAIL__PASSWORD"]
    found["SMTP AUTH PLAIN"] = b64(f"\0{user}\0{password}")
    found["SMTP AUTH LOGIN password"] = b64(password)
    key, secret = SECRETS["DISPATCHER_FAX__API_KEY"], SECRETS["DISPATCHER_FAX__API_SECRET"]
    found["fax Basic auth"] = b64(f"{key}:{secret}")
    return found


def with_password(url: str) -> str:
    """PostgreSQL's trust authentication takes any password: it still travels in the URL
    and the settings, which is what this is about."""
    return url.replace("postgres@", f"postgres:{DATABASE_PASSWORD}@", 1)


async def tour(base: str, captured: list[str]) -> None:
    """What supporters, operators and strangers ask of the service; every answer kept."""
    token = SECRETS["DISPATCHER_OPERATOR_TOKEN"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def keep(response: httpx.Response) -> httpx.Response:
            captured.append(f"{response.request.method} {response.request.url}")
            captured.append(str(response.headers))
            captured.append(response.text)
            return response

        appeals = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
        body = {"supporter": {"name": "Ana Lima", "email": "ana@example.org"}}
        assert (await keep(await http.post(appeals, json=body))).status_code == 202
        refused = {"supporter": {"name": "Ana", "email": "refused@example.org"}}
        await keep(await http.post(appeals, json=refused))
        await keep(await http.post(appeals, json={"supporter": {"name": "", "email": "x@"}}))
        await keep(await http.post(appeals, content=b"{not json"))
        await keep(await http.post(appeals, content=b"x" * 300_000))
        for path in ("/c/does-not-exist", "/a/unknown", "/api/deliveries/99999999999/retry"):
            await keep(await http.get(path))
        await keep(await http.get("/api/deliveries", headers={"Authorization": "Bearer wrong"}))
        await keep(await http.post("/webhooks/fax", data={"fax": "{}"}))
        await keep(
            await http.post(
                "/webhooks/fax", data={"fax": "{}"}, headers={"X-Phaxio-Signature": "0" * 40}
            )
        )

        async def settled() -> bool:  # every delivery (or given up)
            report = await keep(await http.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report"))
            pending: int = sum(c["pending"] for c in report.json()["channels"].values())
            return pending == 0

        await eventually(settled, what="every delivery settled", within=30, every=0.1)
        operator = {"Authorization": f"Bearer {token}"}
        await keep(await http.get("/api/deliveries?include=attempts", headers=operator))
        await keep(await http.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report.csv", headers=operator))
        login = await keep(await http.get("/operator"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "token": "wrong"}
        await keep(await http.post("/operator/login", data=form))
        form["token"] = token
        await keep(await http.post("/operator/login", data=form))
        await keep(await http.get("/operator"))
        for path in ("/metrics", "/healthz", "/openapi.json", "/docs", f"/c/{OPEN_CAMPAIGN}"):
            await keep(await http.get(path))


async def until_serving(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:

        async def answers() -> bool:
            try:
                await http.get("/healthz")
            except httpx.TransportError:
                return False
            return True

        await eventually(answers, what="`dispatcher serve` answering", within=30, every=0.1)


async def test_no_secret_appears_in_logs_pages_answers_or_metrics(
    tmp_path: Path, campaigns_dir: Path, database_url: str
) -> None:
    port = free_port()
    email_faults = Faults(fail_first=1, refuse=frozenset({"english@mail.gov.cn"}))
    async with Sandbox(
        tmp_path / "box",
        email_faults=email_faults,
        fax_faults=Faults(busy_first=1),
        x_faults=Faults(rate_limit_first=1, rate_limit_reset_seconds=0),
        fax_callback_token=SECRETS["DISPATCHER_FAX__CALLBACK_TOKEN"],
        fax_transmit_seconds=0.05,
    ) as box:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
        env.update(SECRETS)
        env.update(
            {
                "DISPATCHER_DATABASE_URL": with_password(database_url),
                "DISPATCHER_CAMPAIGNS_DIR": str(campaigns_dir),
                "DISPATCHER_LOG_FORMAT": "json",
                "DISPATCHER_LOG_LEVEL": "debug",
                "DISPATCHER_EMAIL__HOST": "127.0.0.1",
                "DISPATCHER_EMAIL__PORT": str(box.smtp_port),
                "DISPATCHER_EMAIL__START_TLS": "false",
                "DISPATCHER_FAX__BASE_URL": box.fax_base_url,
                "DISPATCHER_FAX__CALLBACK_URL": f"http://127.0.0.1:{port}/webhooks/fax",
                "DISPATCHER_TWITTER__API_BASE_URL": box.x_base_url,
                # The organisation's account, unpaced here (one a minute is its default).
                "DISPATCHER_TWITTER__PER_MINUTE": "600",
                "DISPATCHER_RETRY__BASE_SECONDS": "0.05",
                "DISPATCHER_RETRY__MAX_SECONDS": "0.2",
                "DISPATCHER_RETRY__MAX_ATTEMPTS": "3",
                "DISPATCHER_WORKER__IDLE_SECONDS": "0.05",
                "DISPATCHER_INTAKE__PER_IP_PER_MINUTE": "0",
                "DISPATCHER_SANDBOX__EMBEDDED": "false",
            }
        )
        (tmp_path / "out").mkdir()
        serve_log = tmp_path / "out" / "serve.log"
        with serve_log.open("wb") as log_file:
            server = await asyncio.create_subprocess_exec(
                DISPATCHER,
                "serve",
                "--port",
                str(port),
                "--log-level",
                "debug",
                env=env,
                cwd=tmp_path / "out",
                stdout=log_file,
                stderr=log_file,
            )
            captured: list[str] = []
            try:
                await until_serving(f"http://127.0.0.1:{port}")
                await tour(f"http://127.0.0.1:{port}", captured)
            finally:
                server.send_signal(signal.SIGTERM)
                await asyncio.wait_for(server.wait(), timeout=30)
        received = (len(box.emails), len(box.faxes), len(box.tweets))
    demo = await asyncio.create_subprocess_exec(
        DISPATCHER,
        "demo",
        env=env,
        cwd=tmp_path / "out",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    demo_out, _ = await demo.communicate()
    assert demo.returncode == 0, demo_out.decode()

    logged = serve_log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    outcomes = [line for line in lines if line["event"] == "outcome"]
    # Not vacuous: the run sent over every channel, with failures, and logged it all.
    assert received[0] >= 2 and received[1] >= 1 and received[2] >= 1
    assert {o["channel"] for o in outcomes} == {"email", "fax", "twitter"}
    assert {"delivery_id", "appeal_id", "attempt", "outcome"} <= set(outcomes[0])
    assert any(o["status"] == "failed" for o in outcomes)
    assert any(line["level"] == "debug" for line in lines)
    written = [logged, demo_out.decode(), *captured]
    written += [p.read_text("utf-8", "replace") for p in (tmp_path / "out").rglob("*.log")]
    for name, value in forbidden().items():
        leaks = [text[:200] for text in written if value in text]
        assert leaks == [], f"{name} appears in: {leaks}"
