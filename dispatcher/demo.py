"""``dispatcher demo``: the whole pipeline on the embedded default, against the sandbox.

Everything lives under ``var/demo/`` (a fresh SQLite database and a labelled copy of the
UA 61.21 campaign with its deadline moved, because the real one closed in 2021) and
``var/sandbox/`` (what the sandbox servers received). Nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dispatcher.campaigns import CampaignCatalog, CampaignError, load_campaign
from dispatcher.models import Channel, DeliveryStatus
from dispatcher.output import print_log, print_report
from dispatcher.runtime import (
    build_worker,
    close_adapters,
    install_stop_handlers,
    open_service,
    refuse_if_in_use,
    served_at,
)
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import submit_appeal
from dispatcher.service.links import link_token
from dispatcher.service.log import LogFilter, delivery_changes, delivery_page
from dispatcher.service.reporting import CampaignReport, campaign_report
from dispatcher.service.status import appeal_status
from dispatcher.service.x_accounts import finish_connection, start_connection
from dispatcher.settings import RetrySettings, SandboxSettings, Settings

SOURCE_CAMPAIGN = "ua-61-21"
DEMO_CAMPAIGN = "ua-61-21-demo"
DEMO_DIR = Path("var/demo")
SANDBOX_DIR = Path("var/sandbox")

CHINESE_LETTER = (
    "我对新疆有六十多名主要来自穆斯林少数民族的人被关押在拘留营或未经公正审判被判刑入狱深感不安。\n\n"
    "我敦促您立即释放所有被关押在新疆拘留营和监狱中的人；在他们获释之前，"
    "公开他们的下落，允许他们与家人和自行选择的律师联系，并确保他们不受酷刑和其他虐待。"
)
CHINESE_TWEET = "请立即释放所有在新疆被任意拘押的人，并告知家属他们的下落。#新疆"


@dataclass(frozen=True)
class DemoAppeal:
    label: str
    request: AppealRequest
    # The supporter connects this (sandbox) X account on the page first: their posts go
    # out from it. Without one, their posts are handed to them (counted as unverified).
    x_account: str | None = None


def demo_appeals() -> list[DemoAppeal]:
    def req(**kwargs: object) -> AppealRequest:
        return AppealRequest(campaign_id=DEMO_CAMPAIGN, **kwargs)  # type: ignore[arg-type]

    return [
        DemoAppeal(
            "sample letter, every target and channel, posts from her own X account",
            req(
                supporter_name="Ana Lima",
                supporter_email="ana.lima@example.org",
                supporter_country="Brazil",
            ),
            x_account="ana_lima",
        ),
        DemoAppeal(
            "own letter and tweet in Chinese to the ambassador",
            req(
                supporter_name="李华",
                supporter_email="li.hua@example.net",
                targets=["cui-tiankai"],
                message=CHINESE_LETTER,
                tweet=CHINESE_TWEET,
                language="zh",
            ),
        ),
        DemoAppeal(
            "own letter, email to the president only",
            req(
                supporter_name="Kwame Mensah",
                supporter_email="kwame@example.com",
                supporter_country="Ghana",
                targets=["xi-jinping"],
                channels=["email"],
                message="I ask you to release every person arbitrarily detained in Xinjiang "
                "and to let their families know where they are.",
            ),
        ),
        DemoAppeal(
            "email and X to both officials, no X account connected (posts handed to her)",
            req(
                supporter_name="Sofia Rossi",
                supporter_email="sofia.rossi@example.it",
                channels=["email", "twitter"],
            ),
        ),
        DemoAppeal(
            "the same supporter again (different case in the email)",
            req(
                supporter_name="Ana Lima",
                supporter_email="Ana.Lima@Example.org",
                supporter_country="Brazil",
            ),
        ),
    ]


def write_demo_campaign(source_dir: Path, target_dir: Path, today: dt.date) -> Path:
    """A copy of the shipped campaign, clearly labelled, with the deadline 30 days ahead."""
    source = source_dir / f"{SOURCE_CAMPAIGN}.toml"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignError(
            f"{source}: the demo needs the shipped UA 61.21 campaign here "
            f"({exc.strerror}); check DISPATCHER_CAMPAIGNS_DIR"
        ) from exc
    deadline = today + dt.timedelta(days=30)
    text = re.sub(r'^id = ".*"$', f'id = "{DEMO_CAMPAIGN}"', text, count=1, flags=re.M)
    text = re.sub(
        r"^deadline = .*$", f"deadline = {deadline.isoformat()}", text, count=1, flags=re.M
    )
    text = re.sub(
        r'^title = "(.*)"$', r'title = "[DEMO COPY, deadline moved] \1"', text, count=1, flags=re.M
    )
    # The Chinese pages' title too: a demo copy is labelled in every language.
    text = re.sub(
        r'^(\[text\.zh\]\ntitle = ")', r"\1[演示副本，截止日期已推迟] ", text, count=1, flags=re.M
    )
    # The rehearsal finishes now, whatever the hour in Beijing or Washington.
    text = re.sub(r"^fax_hours = .*\n", "", text, flags=re.M)
    target_dir.mkdir(parents=True, exist_ok=True)
    # The original too, unchanged: the pages show that it is closed.
    (target_dir / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    path = target_dir / f"{DEMO_CAMPAIGN}.toml"
    path.write_text(
        "# Generated by `dispatcher demo` from " + str(source) + ": the original closed on its "
        "deadline, so this copy moves it (and drops the fax hours, so the demo ends now).\n" + text,
        encoding="utf-8",
    )
    load_campaign(path)  # fail here, loudly, if the copy is not a valid campaign
    return path


def demo_settings(base: Settings, sandbox: Sandbox) -> Settings:
    """Short retry delays so the demo settles in seconds; channels point at our sandbox."""
    return base.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{DEMO_DIR / 'dispatcher.db'}",
            "campaigns_dir": DEMO_DIR / "campaigns",
            "retry": RetrySettings(
                base_seconds=1.0,
                max_seconds=4.0,
                max_attempts=5,
                fast_tries=3,
                fast_wait_seconds=0.2,
                fast_max_seconds=10.0,
            ),
            "sandbox": SandboxSettings(
                host="127.0.0.1",
                smtp_port=sandbox.smtp_port,
                fax_port=sandbox.fax_port,
                x_port=sandbox.x_port,
                directory=SANDBOX_DIR,
                fax_transmit_seconds=0.5,
            ),
            # The demo must never reach a real provider, whatever the environment says.
            "email": base.email.model_copy(update={"host": None}),
            # The same fax API (DISPATCHER_FAX__PROVIDER), spoken by the sandbox.
            "fax": base.fax.sandboxed(),
            "twitter": base.twitter.model_copy(update={"api_base_url": None, "consumer_key": None}),
        }
    )


def ensure_secret_key(base: Settings, env_file: Path, console: Console) -> Settings:
    """The settings with a secret key: the configured one, or a new one written to
    ``env_file`` (created if needed) so that later `serve` processes share it."""
    if base.secret_key is not None:
        return base
    key = secrets.token_urlsafe(32)
    existing = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    env_file.write_text(
        f"{existing}{separator}# Signs forms; generated by `dispatcher demo`.\n"
        f"DISPATCHER_SECRET_KEY={key}\n",
        encoding="utf-8",
    )
    env_file.chmod(0o600)
    console.print(f"Wrote a new DISPATCHER_SECRET_KEY to {env_file} (keep it secret).")
    return base.model_copy(update={"secret_key": SecretStr(key)})


def demo_environment() -> list[str]:
    """The settings that point other commands at the demo's database and campaigns."""
    return [
        f"export DISPATCHER_DATABASE_URL=sqlite+aiosqlite:///{DEMO_DIR}/dispatcher.db",
        f"export DISPATCHER_CAMPAIGNS_DIR={DEMO_DIR}/campaigns",
    ]


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int


async def run_demo(base: Settings, console: Console, serve: ServeOptions | None = None) -> int:
    """Run the demo; with ``serve``, keep the sandbox and the web service up afterwards
    (the receipts the demo sends then link to the pages it serves)."""
    started = time.monotonic()
    if serve is not None:
        base = served_at(base, serve.host, serve.port)
    if DEMO_DIR.exists():
        refuse_if_in_use(DEMO_DIR / "dispatcher.db")  # never delete it under a running serve
        shutil.rmtree(DEMO_DIR)
    write_demo_campaign(base.campaigns_dir, DEMO_DIR / "campaigns", dt.datetime.now(dt.UTC).date())
    campaign = CampaignCatalog.load(DEMO_DIR / "campaigns").get(DEMO_CAMPAIGN)
    assert campaign is not None
    xi_fax = campaign.targets[0].fax or ""
    sandbox = Sandbox(
        SANDBOX_DIR,
        email_faults=Faults(fail_first=2),
        fax_faults=Faults(busy_first=1, refuse=frozenset({xi_fax})),
        x_faults=Faults(rate_limit_first=1, fail_first=1),
        fax_transmit_seconds=0.5,
        fax_dialect=base.fax.provider,
        clear=True,
    )
    console.rule("[bold]Appeal dispatcher demo")
    console.print(
        f"Campaign [bold]{campaign.id}[/]: {campaign.title}\n"
        f"Sandbox faults: first 2 emails get SMTP 451; first X post gets 429, the next 503; "
        f"first fax line is busy; fax number {xi_fax} is not operational (permanent)."
    )
    base = ensure_secret_key(base, Path(".env"), console)
    async with sandbox, contextlib.AsyncExitStack() as stack:
        settings = demo_settings(base, sandbox)
        if sandbox.fax_dialect in ("sinch", "telnyx"):
            # Their gateways call us back (and Telnyx's fetches each fax from our pages).
            settings = await stack.enter_async_context(_web_for_the_gateway(settings))
        async with open_service(settings) as service:
            console.rule("Supporters act (one step each)")
            total = await _submit_appeals(service, console)
            console.rule("Worker sends (live)")
            await _run_worker_with_progress(settings, service, total, console)
            report = await campaign_report(service, DEMO_CAMPAIGN)
            await _print_x_posts(service, console)
        received = sandbox.delivered_counts()
        match = _print_outcome(console, report, received)
        console.print(f"Demo finished in {time.monotonic() - started:.1f} s.")
        if serve is not None:
            await _serve(settings, serve, console)
    return 0 if match else 1


async def _submit_appeals(service: Service, console: Console) -> int:
    """The demo supporters act, one step each; returns how many deliveries were created."""
    total = 0
    for item in demo_appeals():
        request = item.request
        if item.x_account is not None:
            connection = await connect_sandbox_account(service, item.x_account)
            request = replace(request, x_connection=connection)
            console.print(f"  {request.supporter_name} connects the X account @{item.x_account}")
        result = await submit_appeal(service, request)
        if isinstance(result, Rejected):
            console.print(f"  [red]refused[/] {item.label}: {result.first.message}")
            continue
        receipt = result.receipt
        assert receipt is not None  # the demo is an operator's tool (its requests' via)
        who = item.request.supporter_name
        if receipt.is_repeat:
            console.print(
                f"  {who}: {item.label} → [yellow]already counted[/] "
                "(nothing new stored; the address is told by email)"
            )
        else:
            total += len(receipt.created)
            chans = ", ".join(f"{d.target_id}/{d.channel}" for d in receipt.created)
            console.print(f"  {who}: {item.label} → appeal {receipt.appeal_id}: {chans}")
    return total


async def _print_x_posts(service: Service, console: Console) -> None:
    """The X posts as the operator's log shows them: from a supporter's own account, and
    handed off (with the link the supporter was given)."""
    console.rule("X posts (the operator's log)")
    page = await delivery_page(service, LogFilter(campaign=DEMO_CAMPAIGN, channel=Channel.TWITTER))
    print_log(page.entries, "text")
    for entry in page.entries:
        if entry.status is DeliveryStatus.HANDED_OFF:
            status = await appeal_status(
                service, entry.appeal_id, link_token(service, "status", entry.appeal_id)
            )
            for shown in status.deliveries:
                if shown.id == entry.id and shown.hand_off:
                    console.print(
                        f"  #{entry.id} handed to its supporter: {service.public_url}"
                        f"{shown.hand_off}",
                        soft_wrap=True,
                        markup=False,
                        highlight=False,
                    )


async def connect_sandbox_account(service: Service, username: str) -> str:
    """What a supporter does on the campaign page: connect their X account, here on the
    sandbox X (its consent page, answered "Authorize app"). Returns the connection's id."""
    connection_id, consent_page = await start_connection(service, DEMO_CAMPAIGN)
    url = urlsplit(consent_page)
    form = {**dict(parse_qsl(url.query)), "username": username, "decision": "allow"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(consent_page.partition("?")[0], data=form)
    back = dict(parse_qsl(urlsplit(answer.headers.get("location", "")).query))
    await finish_connection(
        service, state=back.get("state", ""), code=back.get("code"), error=back.get("error")
    )
    return connection_id


def _print_outcome(console: Console, report: CampaignReport, received: dict[str, int]) -> bool:
    console.rule("Report")
    print_report(report)
    # Everything went to the sandbox: all of it is rehearsal, none of it an action.
    rehearsed = {c: counts.delivered for c, counts in report.rehearsal.channels.items()}
    # Every channel has appeals that go through whatever faults the sandbox injects: a
    # channel where nothing arrived is a broken path, never a match.
    match = (
        rehearsed == received
        and report.actions == 0
        and all(received.values())
        and report.unverified.handed_off > 0
    )
    console.print(
        f"Sandbox received: email {received['email']}, fax {received['fax']}, "
        f"X {received['twitter']}  —  "
        + (
            "[green]matches the report's rehearsal[/] (0 actions: nothing reached the officials)"
            if match
            else f"[red]DOES NOT match: rehearsal {rehearsed}, actions {report.actions}[/]"
        )
    )
    console.print(
        f"X posts handed to their supporters to send themselves: "
        f"{report.unverified.handed_off} (unverified, never in actions; "
        f"{report.unverified.opened} opened)"
    )
    console.print(
        f"Open what arrived: {SANDBOX_DIR}/email/*.eml, {SANDBOX_DIR}/fax/*.pdf, "
        f"{SANDBOX_DIR}/twitter/tweets.jsonl"
    )
    console.print(f"To use the demo's open campaign ({DEMO_CAMPAIGN}) with other commands, set:")
    for line in demo_environment():  # each on a line of its own, never wrapped: copyable
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.print(f"then, for example: dispatcher log --campaign {DEMO_CAMPAIGN}")
    return match


@contextlib.asynccontextmanager
async def _web_for_the_gateway(settings: Settings) -> AsyncIterator[Settings]:
    """The web service (no worker) on a loopback port while the demo sends, for a gateway
    that calls back (Sinch's, Telnyx's) or fetches each fax from a signed link (Telnyx's);
    the settings whose DISPATCHER_PUBLIC_URL points at it."""
    import socket

    import uvicorn

    from dispatcher.web.app import create_app, server_config

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, run_worker=False)
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # it could not start: say why
            await asyncio.sleep(0.02)
        yield settings
    finally:
        server.should_exit = True
        await task


async def _serve(settings: Settings, options: ServeOptions, console: Console) -> None:
    """The web service on the demo's database, sandbox and campaigns, until Ctrl-C."""
    import uvicorn

    from dispatcher.web.app import create_app, server_config

    token = settings.operator_token.get_secret_value() if settings.operator_token else None
    if not token:
        token = secrets.token_urlsafe(16)
        settings = settings.model_copy(update={"operator_token": SecretStr(token)})
    base = f"http://{options.host}:{options.port}"
    console.rule("Serving (Ctrl-C to stop)")
    console.print(
        f"Supporter page:      {base}/c/{DEMO_CAMPAIGN}\n"
        f"Closed original:     {base}/c/{SOURCE_CAMPAIGN}\n"
        f"Operator dashboard:  {base}/operator\n"
        f"API docs:            {base}/docs\n"
        "Operator token (sign in with it; also the API's bearer token):"
    )
    console.print(token, soft_wrap=True, markup=False, highlight=False)
    app = create_app(settings, announce=console.print)
    server = uvicorn.Server(server_config(app, settings, host=options.host, port=options.port))
    await server.serve()


async def _run_worker_with_progress(
    settings: Settings, service: Service, total: int, console: Console
) -> None:
    worker = build_worker(settings, service)
    demo_log = LogFilter(campaign=DEMO_CAMPAIGN)
    stop = asyncio.Event()
    remove_handlers = install_stop_handlers(stop)
    run = asyncio.create_task(worker.run(drain=True, stop=stop))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("settling", total=total)
            while True:
                entries = await delivery_changes(service, demo_log)
                counts: dict[str, int] = {}
                for e in entries:
                    counts[e.status.value] = counts.get(e.status.value, 0) + 1
                settled = sum(1 for e in entries if e.status.settled)
                text = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                progress.update(bar, completed=settled, description=text)
                if run.done():
                    break
                await asyncio.wait({run}, timeout=0.2)
        await run
    finally:
        remove_handlers()  # `demo --serve` hands Ctrl-C to the web server next
        await close_adapters(worker)
    failed_log = LogFilter(campaign=DEMO_CAMPAIGN, status=DeliveryStatus.FAILED)
    failed = await delivery_changes(service, failed_log)
    for entry in failed:
        err = entry.last_error
        console.print(
            f"  [red]failed[/] delivery {entry.id} {entry.target_id}/{entry.channel} after "
            f"{entry.attempts} attempt(s): {err.message if err else ''}"
        )
