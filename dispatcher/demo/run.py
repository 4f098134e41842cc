"""The demo's run: the supporters act, the worker sends with a live progress bar, the
outcome is checked; with ``--serve``, the web pages stay up afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dispatcher.campaigns import CampaignCatalog
from dispatcher.demo.check import print_outcome, print_x_posts
from dispatcher.demo.prepare import (
    DEMO_CAMPAIGN,
    DEMO_DIR,
    SANDBOX_DIR,
    SOURCE_CAMPAIGN,
    demo_settings,
    ensure_secret_key,
    write_demo_campaign,
)
from dispatcher.demo.supporters import submit_appeals
from dispatcher.models import DeliveryStatus
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
from dispatcher.service.log import LogFilter, delivery_changes
from dispatcher.service.reporting import campaign_report
from dispatcher.settings import Settings


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
            total = await submit_appeals(service, console)
            console.rule("Worker sends (live)")
            await _run_worker_with_progress(settings, service, total, console)
            report = await campaign_report(service, DEMO_CAMPAIGN)
            await print_x_posts(service, console)
        received = sandbox.delivered_counts()
        match = print_outcome(console, report, received)
        console.print(f"Demo finished in {time.monotonic() - started:.1f} s.")
        if serve is not None:
            await _serve(settings, serve, console)
    return 0 if match else 1


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
