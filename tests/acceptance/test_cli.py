"""The real `dispatcher` CLI in a subprocess: send → worker --drain → report, on the sandbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from dispatcher.cli import main
from dispatcher.demo import write_demo_campaign
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.store import Store
from tests.conftest import OPEN_CAMPAIGN, SHIPPED_CAMPAIGNS, free_port, process_env
from tests.waiting import eventually

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path

    async def __call__(self, *args: str) -> Result:
        """Run ``dispatcher ARGS`` to completion."""
        process = await self.start(*args)
        stdout, stderr = await process.communicate()
        assert process.returncode is not None
        return Result(process.returncode, stdout.decode(), stderr.decode())

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        """Start ``dispatcher ARGS`` with piped stdout and stderr."""
        return await asyncio.create_subprocess_exec(
            DISPATCHER,
            *args,
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    faults_email = Faults(fail_first=1, refuse=frozenset({"english@mail.gov.cn"}))
    async with Sandbox(
        tmp_path / "sandbox",
        email_faults=faults_email,
        fax_faults=Faults(busy_first=1),
        x_faults=Faults(rate_limit_first=1, rate_limit_reset_seconds=0),
        fax_transmit_seconds=0.05,
    ) as box:
        yield box


@pytest.fixture
def cli(tmp_path: Path, campaigns_dir: Path, sandbox: Sandbox) -> Cli:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = process_env(database_url, campaigns_dir, sandbox, DISPATCHER_RETRY__FAST_TRIES="1")
    return Cli(env, tmp_path)


async def test_send_then_drain_then_report_matches_what_the_sandbox_received(
    cli: Cli, sandbox: Sandbox, tmp_path: Path
) -> None:
    ana = await cli(
        "send",
        "--campaign",
        OPEN_CAMPAIGN,
        "--name",
        "Ana Lima",
        "--email",
        "ana@example.org",
        "--country",
        "Brazil",
    )
    assert ana.code == 0, ana.stderr
    appeal_id = re.search(r"Appeal (\S+) stored with 5 deliveries", ana.stdout)
    assert appeal_id, ana.stdout

    letter = tmp_path / "letter.txt"
    letter.write_text("请立即释放所有在新疆被任意拘押的人。", encoding="utf-8")
    li = await cli(
        "send",
        "--campaign",
        OPEN_CAMPAIGN,
        "--name",
        "李华",
        "--email",
        "li@example.net",
        "--target",
        "cui-tiankai",
        "--message-file",
        str(letter),
        "--language",
        "zh",
        "--tweet",
        "请立即释放所有被任意拘押的人",
    )
    assert li.code == 0, li.stderr
    assert "stored with 3 deliveries" in li.stdout

    again = await cli(
        "send",
        "--campaign",
        OPEN_CAMPAIGN,
        "--name",
        "Ana Lima",
        "--email",
        "ANA@example.org",
    )
    assert again.code == 0 and "Already counted" in again.stdout
    assert "(already counted)" in again.stdout

    worker = await cli("worker", "--drain")
    assert worker.code == 0, worker.stderr
    assert "using the sandbox already listening" in worker.stderr

    report_run = await cli("report", "--campaign", OPEN_CAMPAIGN, "--format", "json")
    assert report_run.code == 0, report_run.stderr
    report = json.loads(report_run.stdout)
    # Each supporter also got a receipt (to them, never to an official), and Ana a notice
    # that her email to Xi Jinping failed while the rest were on their way: not actions.
    to_supporters = [m for m in sandbox.emails if "@example" in str(m["To"])]
    subjects = sorted(
        (str(m["To"]), re.split("[:：]", str(m["Subject"]).strip())[0]) for m in to_supporters
    )
    # Li wrote in Chinese: her receipt is in Chinese. Ana's address was used again: only
    # the address is told it had taken part already.
    assert subjects == [
        ("ana@example.org", "Not delivered"),
        ("ana@example.org", "You had already taken part"),
        ("ana@example.org", "Your appeal"),
        ("li@example.net", "您的呼吁"),
    ]
    receipts = {str(m["To"]): m for m in to_supporters if "Your appeal" in str(m["Subject"])}
    ana_receipt = receipts["ana@example.org"].get_content()
    assert "- Xi Jinping, by Email: not delivered. The official's mail server refused" in (
        ana_receipt
    )
    # Her address was never confirmed: "this wasn't me" and the status link, not her letter.
    assert f"/a/{appeal_id.group(1)}/not-me?token=" in ana_receipt
    assert f"/a/{appeal_id.group(1)}?token=" in ana_receipt
    received = dict(sandbox.delivered_counts(), email=len(sandbox.emails) - len(to_supporters))
    # All of it went to the sandbox: a rehearsal, counted apart, never an action.
    rehearsal = report["rehearsal"]
    assert {c: v["delivered"] for c, v in rehearsal["channels"].items()} == received
    assert received == {"email": 2, "fax": 3, "twitter": 2}
    assert (report["actions"], rehearsal["delivered"]) == (0, 7)
    assert (report["appeals"], rehearsal["appeals"], rehearsal["supporters"]) == (0, 2, 2)
    assert rehearsal["channels"]["email"]["failed"] == 1  # the refused address
    assert rehearsal["targets"]["xi-jinping"]["email"] == {
        "delivered": 0,
        "failed": 1,
        "pending": 0,
        "cancelled": 0,
        "handed_off": 0,
    }

    ana_mail = next(m for m in sandbox.emails if "Ana Lima via" in str(m["From"]))
    [sender] = ana_mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Ana Lima via Appeal Dispatcher",
        "appeals@dispatcher.invalid",
    )
    # She did not ask that officials may reply to her: her address is nowhere in it.
    assert ana_mail["Reply-To"] is None and "ana@example.org" not in ana_mail.as_string()
    assert str(ana_mail["To"]) == "Cui Tiankai <chinaembpress_us@mfa.gov.cn>"
    assert re.fullmatch(r"<delivery-\d+\.\S+@dispatcher\.invalid>", str(ana_mail["Message-ID"]))
    body = ana_mail.get_content().replace("\r\n", "\n")  # canonical CRLF on the wire
    assert body.startswith("Dear Ambassador,\n\nI am distressed")
    assert body.rstrip().endswith("Sincerely,\n\nAna Lima\nBrazil")
    li_mail = next(m for m in sandbox.emails if "李华" in str(m["From"]))
    assert "请立即释放" in li_mail.get_content()
    assert {f.to for f in sandbox.faxes if f.status == "success"} == {
        "+861062381025",
        "+12024952138",
    }
    texts = sorted(t["text"] for t in sandbox.tweets)
    assert texts[0].startswith("@ChineseEmbinUS @AmbCuiTiankai ")
    assert {re.sub(r" \(ref [a-z2-7]{5}\)$", "", t.rsplit("— ", 1)[1]) for t in texts} == {
        "Ana Lima",
        "李华",
    }

    log = await cli("log", "--campaign", OPEN_CAMPAIGN, "--status", "failed", "--format", "json")
    assert log.code == 0
    [failed] = [json.loads(line) for line in log.stdout.splitlines()]
    assert (failed["target"], failed["channel"]) == ("xi-jinping", "email")
    assert failed["last_error"]["code"] == "550"
    assert "mailbox unavailable" in failed["last_error"]["message"]


BAD_INPUT = [
    (["--email", "not-an-email"], "supporter.email 'not-an-email' is not a valid email"),
    (["--name", "Ana\r\nBcc: x@example.org"], "control or line-break characters"),
    (["--target", "mayor"], "unknown target 'mayor'"),
    (["--channel", "pigeon"], "unknown channel 'pigeon'; accepted: email, fax, twitter"),
    (["--campaign", "ua-61-21"], "closed: its deadline was 2021-09-10"),
    (["--campaign", "nope"], "unknown campaign 'nope'"),
    (["--tweet", "释" * 120], "X accepts at most 280"),
    (["--message-file", "big.txt"], "this campaign accepts at most 10000"),
]


def send_argv(tmp_path: Path, args: list[str]) -> list[str]:
    (tmp_path / "big.txt").write_text("word " * 3000, encoding="utf-8")
    base = {"--campaign": OPEN_CAMPAIGN, "--name": "Ana Lima", "--email": "ana@example.org"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    return ["send", *(part for pair in base.items() for part in pair)]


@pytest.fixture
def in_process(
    tmp_path: Path,
    campaigns_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Result]:
    """``dispatcher ARGS`` run by ``main()`` in this process, on its own SQLite file."""
    for name in [n for n in os.environ if n.startswith("DISPATCHER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DISPATCHER_CAMPAIGNS_DIR", str(campaigns_dir))
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout

    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.mark.parametrize(("args", "says"), BAD_INPUT)
def test_bad_input_exits_non_zero_with_a_sentence_and_stores_nothing(
    in_process: Callable[..., Result], tmp_path: Path, args: list[str], says: str
) -> None:
    result = in_process(*send_argv(tmp_path, args))
    assert result.code != 0
    assert says in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    report = in_process("report", "--campaign", OPEN_CAMPAIGN, "--format", "json")
    assert json.loads(report.stdout)["appeals"] == 0
    assert in_process("log", "--format", "json").stdout == ""


def test_a_bad_log_filter_is_refused_with_the_apis_sentence(
    in_process: Callable[..., Result],
) -> None:
    status = in_process("log", "--status", "lost")
    assert status.code == 1
    assert status.stderr.startswith(
        "error: status 'lost' is not one of: held, awaiting_supporter, queued, sending, "
    )
    channel = in_process("log", "--channel", "pigeon")
    assert channel.code == 1
    assert channel.stderr == "error: channel 'pigeon' is not one of: email, fax, twitter\n"


def test_an_unreachable_database_is_one_sentence_without_the_password(
    in_process: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{free_port()}/appeals"
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", url)
    result = in_process("worker", "--drain")
    assert result.code == 2
    assert result.stderr.startswith("error: cannot reach the database at postgresql+asyncpg://")
    assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr


def test_a_worker_on_a_schema_it_does_not_match_exits_with_one_sentence(
    in_process: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table the worker needs is missing (the database was migrated by another release):
    waiting cannot mend that, so the worker says so and exits 1 instead of retrying."""
    assert in_process("migrate").code == 0
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("ALTER TABLE pacing RENAME TO pacing_of_another_release")
    monkeypatch.setenv("DISPATCHER_SANDBOX__EMBEDDED", "false")  # nothing to send anyway
    result = in_process("worker", "--drain")
    assert result.code == 1
    assert result.stderr.endswith(
        "error: the worker stopped: the database schema does not match this release (table "
        "pacing): run `dispatcher migrate` with this release, or use the release that "
        "migrated it\n"
    )
    assert "Traceback" not in result.stderr


def test_purge_refuses_an_open_campaign_and_reports_what_it_removed(
    in_process: Callable[..., Result],
) -> None:
    still_open = in_process("purge", "--campaign", OPEN_CAMPAIGN)
    assert still_open.code == 1
    assert still_open.stderr.startswith(f"error: campaign {OPEN_CAMPAIGN} is open until ")
    closed = in_process("purge", "--campaign", "ua-61-21", "--older-than", "30")
    assert closed.code == 0
    assert closed.stdout.startswith("Removed the personal data of 0 appeal(s) in ua-61-21")


async def test_bad_input_from_the_real_command_exits_non_zero(cli: Cli, tmp_path: Path) -> None:
    """The same refusal through the installed console script, as a user meets it."""
    result = await cli(*send_argv(tmp_path, ["--email", "not-an-email"]))
    assert result.code == 1
    assert result.stderr.startswith("error: supporter.email 'not-an-email' is not a valid")
    assert "Traceback" not in result.stderr
    report = await cli("report", "--campaign", OPEN_CAMPAIGN, "--format", "json")
    assert json.loads(report.stdout)["appeals"] == 0


async def test_log_follow_streams_changes_and_worker_exits_cleanly_on_sigterm(cli: Cli) -> None:
    sent = await cli(
        "send",
        "--campaign",
        OPEN_CAMPAIGN,
        "--name",
        "Ana Lima",
        "--email",
        "ana@example.org",
        "--target",
        "cui-tiankai",
        "--channel",
        "email",
    )
    assert sent.code == 0, sent.stderr
    follow = await cli.start("log", "--follow", "--format", "json", "--interval", "0.05")
    processes = [follow]
    try:
        assert follow.stdout is not None
        first = json.loads(await asyncio.wait_for(follow.stdout.readline(), timeout=30))
        assert (first["target"], first["channel"], first["status"]) == (
            "cui-tiankai",
            "email",
            "queued",
        )
        worker = await cli.start("worker")
        processes.append(worker)
        # The stream is the event we wait for. It shows each change it observes (a state
        # held for less than one poll interval can be skipped), ending with delivered.
        seen: list[str] = []
        while "delivered" not in seen:
            line = await asyncio.wait_for(follow.stdout.readline(), timeout=30)
            assert line, "log --follow ended early"
            event = json.loads(line)
            assert (event["id"], event["target"]) == (first["id"], "cui-tiankai")
            seen.append(event["status"])
        assert set(seen) <= {"sending", "queued", "delivered"}
        worker.send_signal(signal.SIGTERM)
        _, worker_err = await asyncio.wait_for(worker.communicate(), timeout=30)
        assert worker.returncode == 0, worker_err.decode()
        assert "worker stopped: " in worker_err.decode()
        follow.send_signal(signal.SIGINT)
        await asyncio.wait_for(follow.communicate(), timeout=30)
        assert follow.returncode == 0
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_sandbox_command_serves_records_and_stops_on_sigint(cli: Cli, tmp_path: Path) -> None:
    ports = {"SMTP": free_port(), "FAX": free_port(), "X": free_port()}
    cli.env.update({f"DISPATCHER_SANDBOX__{k}_PORT": str(v) for k, v in ports.items()})
    cli.env["DISPATCHER_SANDBOX__DIRECTORY"] = str(tmp_path / "standalone")
    process = await cli.start("sandbox", "--email-refuse", "nobody@example.gov")
    try:
        assert process.stdout is not None
        banner = ""
        while "X API" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert line, "the sandbox exited early"
            banner += line.decode()
        assert f"127.0.0.1:{ports['SMTP']}" in banner
        assert f"http://127.0.0.1:{ports['FAX']} (phaxio)" in banner
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.org", "t@example.gov", "Hi"
        message.set_content("hello")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=ports["SMTP"], start_tls=False)
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            del message["To"]
            message["To"] = "nobody@example.gov"
            await aiosmtplib.send(
                message, hostname="127.0.0.1", port=ports["SMTP"], start_tls=False
            )
        assert [p.name for p in (tmp_path / "standalone" / "email").iterdir()] == [
            "00001-t@example.gov.eml"
        ]
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_accepts_an_appeal_sends_it_and_stops_on_sigterm(cli: Cli) -> None:
    port = free_port()
    cli.env["DISPATCHER_OPERATOR_TOKEN"] = "t0ken-for-the-serve-test"
    cli.env["DISPATCHER_SECRET_KEY"] = "a-secret-key-for-the-serve-test"
    process = await cli.start("serve", "--port", str(port), "--log-level", "warning")
    base = f"http://127.0.0.1:{port}"
    operator = {
        "Authorization": "Bearer t0ken-for-the-serve-test"
    }  # /healthz's details are for operators
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def answer() -> httpx.Response | None:
                try:
                    return await http.get("/healthz", headers=operator)
                except httpx.TransportError:
                    return None

            health = await eventually(answer, what="`dispatcher serve` answering", within=30)
            assert health.json() == {
                "status": "ok",
                "database": "ok",
                "worker": "running",
                "worker_restarts": 0,
            }
            body = {
                "supporter": {"name": "Ana Lima", "email": "ana@example.org"},
                "targets": ["cui-tiankai"],
                "channels": ["fax", "twitter"],
            }
            created = await http.post(f"/api/campaigns/{OPEN_CAMPAIGN}/appeals", json=body)
            assert created.status_code == 202
            appeal_id = created.json()["appeal_id"]
            appeal_url = f"/api/appeals/{appeal_id}?token={status_token(cli, appeal_id)}"

            async def delivered() -> bool:  # by the in-process worker
                deliveries = (await http.get(appeal_url)).json()["deliveries"]
                return {d["status"] for d in deliveries} == {"delivered"}

            await eventually(delivered, what="the fax and the post delivered", within=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        # uvicorn shuts down gracefully, then re-raises SIGTERM: the conventional exit status.
        assert process.returncode in (0, -signal.SIGTERM)
        assert "Traceback" not in stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def status_token(cli: Cli, appeal_id: str) -> str:
    """The status link's token, computed as the README says: an HMAC of the appeal under a
    key derived from DISPATCHER_SECRET_KEY (not with our own code)."""
    secret = cli.env["DISPATCHER_SECRET_KEY"].encode()
    key = hmac.new(secret, b"links", hashlib.sha256).digest()
    return hmac.new(key, f"status:{appeal_id}".encode(), hashlib.sha256).hexdigest()[:32]


async def test_a_postgresql_url_without_its_driver_says_what_to_install(cli: Cli) -> None:
    """As on a machine where only the base package is installed: asyncpg cannot be imported."""
    env = dict(cli.env, DISPATCHER_DATABASE_URL="postgresql+asyncpg://dispatcher@127.0.0.1/x")
    script = (
        "import sys; sys.modules['asyncpg'] = None\n"
        "from dispatcher.cli import main\n"
        "sys.exit(main(['report', '--campaign', 'ua-61-21']))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=cli.cwd, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 2
    text = stderr.decode()
    assert text.count("\n") == 1 and "Traceback" not in text
    assert "pip install 'appeal-dispatcher[postgres]'" in text


async def test_workers_started_together_share_one_embedded_sandbox(cli: Cli) -> None:
    """Six workers on one machine, none with provider settings, started at once: one of
    them serves each sandbox port, the others send to it; none fails to start."""
    env = dict(cli.env)
    for name in ("SMTP", "FAX", "X"):
        env[f"DISPATCHER_SANDBOX__{name}_PORT"] = str(free_port())
    together = Cli(env, cli.cwd)
    results = await asyncio.gather(*(together("worker", "--drain") for _ in range(6)))
    assert [r.code for r in results] == [0] * 6, [r.stderr for r in results if r.code]
    for channel in ("email", "fax", "twitter"):
        embedded = [
            r for r in results if f"{channel}: rehearsal, sending to the embedded" in r.stderr
        ]
        shared = [r for r in results if f"{channel}: using the sandbox already" in r.stderr]
        assert len(embedded) >= 1 and len(embedded) + len(shared) == 6


def test_cancel_retry_and_the_log_at_80_columns(
    in_process: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An operator at a terminal: `cancel` and `retry` by id, one line each (exit 1 for a
    refusal); `log` at 80 columns keeps every key column whole and puts the error on a line
    of its own; `report` shows the self-reported count; `--help` shows defaults."""
    monkeypatch.setenv("COLUMNS", "80")
    sent = in_process(*send_argv(tmp_path, ["--target", "cui-tiankai", "--channel", "fax"]))
    delivery_id = re.search(r"│ (\d+)\s+│ cui-tiankai", sent.stdout)
    assert delivery_id, sent.stdout
    number = delivery_id.group(1)
    cancelled = in_process("cancel", number, "999999")
    assert cancelled.code == 1
    assert cancelled.stdout == f"delivery {number} (cui-tiankai, fax): cancelled\n"
    # Each refusal names its delivery once ("delivery 59: delivery 59 is held" said it twice).
    assert cancelled.stderr == "error: no delivery 999999\n"
    again = in_process("cancel", number)
    assert again.stderr == (
        f"error: delivery {number} is cancelled; only awaiting_supporter, expired, failed, "
        "queued deliveries can be cancelled\n"
    )
    log = in_process("log", "--campaign", OPEN_CAMPAIGN)
    lines = log.stdout.splitlines()
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC  #{number}  cui-tiankai  fax · sandbox  "
        "cancelled  0 tries",
        lines[0],
    )
    assert lines[1] == "    Cancelled: cancelled by an operator"
    assert max(len(line) for line in lines) <= 80
    retried = in_process("retry", number)
    assert (retried.code, retried.stdout) == (
        0,
        f"delivery {number} (cui-tiankai, fax): queued again\n",
    )
    report = in_process("report", "--campaign", OPEN_CAMPAIGN)
    assert "self-reported by supporters (counted apart): none" in report.stdout
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "(default: table)" in capsys.readouterr().out


async def test_the_demo_refuses_to_delete_a_database_another_process_has_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make demo` while `serve` runs on the demo's database used to delete it under the
    server (which went on writing to the unlinked file). Now: one sentence, exit 2, and
    the database is left as it was; once the server stops, the demo may start afresh."""
    for name in [n for n in os.environ if n.startswith("DISPATCHER_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "var" / "demo" / "dispatcher.db"
    held = await Store.open(f"sqlite+aiosqlite:///{database}")  # as serve holds it
    try:
        code = await asyncio.to_thread(main, ["demo"])
    finally:
        await held.close()
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "error: var/demo/dispatcher.db is in use by another process (a running `dispatcher "
        "serve` or `worker`?); stop it first, then run the demo again\n"
    )
    assert database.exists()


def test_campaigns_at_80_columns_shows_every_target_whole(
    in_process: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, campaigns_dir: Path
) -> None:
    """The demo's longer title used to squeeze the targets into "(email/fax/twitte…"."""
    write_demo_campaign(SHIPPED_CAMPAIGNS, campaigns_dir, dt.date(2026, 12, 7))
    monkeypatch.setenv("COLUMNS", "80")
    listed = in_process("campaigns")
    assert listed.code == 0
    assert "ua-61-21-demo" in listed.stdout
    assert "…" not in listed.stdout and "twitter" in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
