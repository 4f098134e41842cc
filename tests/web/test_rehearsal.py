"""Live and rehearsal side by side, as an organisation going live would run it: email
through a configured SMTP relay (live), fax routed to the built-in sandbox
(DISPATCHER_SANDBOX__CHANNELS=fax: a rehearsal), X given no provider (hand-off only). The
count shared with officials takes only the live deliveries; the public counter never moves
for a sandbox delivery; an X post is handed to its supporter and counted as unverified."""

from __future__ import annotations

from pathlib import Path

from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Sandbox
from dispatcher.settings import RetrySettings, SandboxSettings, Settings, WorkerSettings
from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import OPERATOR_TOKEN, context_of, running_app, web_settings

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def mixed(tmp_path: Path, campaigns_dir: Path, box: Sandbox) -> Settings:
    return web_settings(
        tmp_path,
        campaigns_dir,
        secret_key="a-secret-key-for-the-rehearsal-test",
        # A relay we configured: live (it is the sandbox's SMTP server, but nothing here
        # says so: exactly what a real relay looks like to the dispatcher).
        email={"host": "127.0.0.1", "port": box.smtp_port, "start_tls": False},
        fax={},
        retry=RetrySettings(base_seconds=0.05, max_seconds=0.2, max_attempts=1, fast_tries=1),
        worker=WorkerSettings(idle_seconds=0.05),
        sandbox=SandboxSettings(
            channels="fax",
            smtp_port=9,
            fax_port=box.fax_port,
            x_port=9,
            directory=box.directory,
            fax_transmit_seconds=0.05,
        ),
    )


async def test_live_email_rehearsed_fax_and_x_off_are_counted_and_shown_apart(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    async with (
        Sandbox(tmp_path / "box", channels=["email", "fax"], fax_transmit_seconds=0.05) as box,
        running_app(mixed(tmp_path, campaigns_dir, box)) as (app, client),
    ):
        page = await client.get(f"/c/{OPEN_CAMPAIGN}")
        handed = await client.post(
            APPEALS,
            json={
                "supporter": {"name": "Ana", "email": "ana@example.org"},
                "channels": ["twitter"],
            },
        )
        sent = await client.post(
            APPEALS,
            json={
                "supporter": {"name": "Ana", "email": "ana@example.org"},
                "channels": ["email", "fax"],
            },
        )
        context = context_of(app)
        worker = build_worker(mixed(tmp_path, campaigns_dir, box), context.service)
        try:
            await worker.run(drain=True)
        finally:
            await close_adapters(worker)
        report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
        after = await client.get(f"/c/{OPEN_CAMPAIGN}")
        log = (await client.get("/api/deliveries", headers=OPERATOR)).json()["deliveries"]
        csv = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report.csv", headers=OPERATOR)
    # X has no provider: offered, and each post handed to its supporter to send.
    assert 'value="cui-tiankai:twitter"' in page.text
    assert "nothing is posted for you" in page.text
    assert 'value="xi-jinping:fax"' in page.text and "rehearsal: nothing reaches the" in page.text
    assert "messages by Fax go to a built-in test server" in page.text
    assert handed.status_code == 202
    posts = handed.json()["hand_offs"]
    assert posts and all(p["link"].startswith("/x/post?") for p in posts)
    assert sorted({d["channel"] for d in sent.json()["deliveries"]}) == ["email", "fax"]
    assert {(d["channel"], d["provider"], d["status"]) for d in log} == {
        ("email", "smtp", "delivered"),
        ("fax", "sandbox", "delivered"),
        ("twitter", "hand_off", "handed_off"),
    }
    assert report["unverified"]["handed_off"] == len(posts)
    # Only the emails reached officials: they are the actions; the faxes are rehearsal.
    emails = len([m for m in box.emails if "@example." not in str(m["To"])])
    assert report["actions"] == emails == 2
    assert report["rehearsal"]["delivered"] == len(box.faxes) == 2
    assert report["channels"]["fax"]["delivered"] == 0
    assert report["rehearsal"]["channels"]["fax"]["delivered"] == 2
    assert report["rehearsal"]["channels_now"] == ["fax"]
    assert '<span id="total-actions">2</span>' in after.text  # never the faxes
    assert "live,(all),fax,0,0,0,0,0" in csv.text and "rehearsal,(all),fax,2,0,0,0,0" in csv.text
