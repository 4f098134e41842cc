"""The ``dispatcher`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.table import Column, Table
from sqlalchemy.engine import make_url

from dispatcher.logs import configure_logging
from dispatcher.models import SENT_CHANNELS, DeliveryStatus, utcnow
from dispatcher.output import err, out, print_log, print_receipt, print_report
from dispatcher.runtime import (
    announce_channel_modes,
    build_worker,
    close_adapters,
    embedded_sandbox,
    install_stop_handlers,
    load_catalog,
    open_service,
    require_secret_when_live,
    run_with_receipts,
    sandbox_from_settings,
    served_at,
)
from dispatcher.service import Service, ServiceError
from dispatcher.service.intake import AppealRequest, Rejected, submit_appeal
from dispatcher.service.log import LogFilter, delivery_changes, follow_deliveries
from dispatcher.service.operator import cancel_delivery, retry_delivery
from dispatcher.service.reporting import campaign_report, report_csv
from dispatcher.service.retention import backup, purge_campaign
from dispatcher.settings import ConfigurationError, Settings
from dispatcher.worker import Worker, WorkerStopped


class UsageError(Exception):
    """Bad command-line input; the message is one sentence for the user."""


# ---------------------------------------------------------------- commands


async def cmd_campaigns(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings)
    table = Table("campaign", "title", "deadline", "state", Column("targets", overflow="fold"))
    for campaign in catalog:  # each target whole, one a line (never cut at 80 columns)
        state = "[green]open[/]" if campaign.is_open() else "[red]closed[/]"
        targets = "\n".join(f"{t.id} ({'/'.join(t.channels)})" for t in campaign.targets)
        table.add_row(campaign.id, campaign.title, campaign.deadline.isoformat(), state, targets)
    if not len(catalog):
        out.print(f"No campaigns in {settings.campaigns_dir}/")
    else:
        out.print(table)
    return 0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings):
        pass
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    out.print(f"Schema is up to date in {shown}")
    return 0


async def cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    try:
        message = None if args.message_file is None else Path(args.message_file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --message-file {args.message_file!r}: {exc}") from exc
    request = AppealRequest(
        campaign_id=args.campaign,
        supporter_name=args.name,
        supporter_email=args.email,
        supporter_country=args.country,
        targets=args.target or (),
        channels=args.channel or (),
        message=message,
        tweet=args.tweet,
        language=args.language,
        reply_to=args.reply_to,
    )
    async with open_service(settings) as service:
        result = await submit_appeal(service, request)
    if isinstance(result, Rejected):
        raise result.first  # said as every refusal is: one sentence (see main)
    assert result.receipt is not None  # given to an operator's tool (the request's via)
    print_receipt(result.receipt)
    return 0


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    require_secret_when_live(settings)
    async with open_service(settings) as service:
        # Build first: half-given provider settings fail before anything starts.
        worker = build_worker(settings, service)
        announce_channel_modes(settings, lambda line: err.print(line, markup=False))
        async with embedded_sandbox(settings, err.print):
            await _run_worker(worker, settings, service, drain=args.drain)
    return 0


async def _run_worker(worker: Worker, settings: Settings, service: Service, *, drain: bool) -> None:
    stop = asyncio.Event()
    install_stop_handlers(stop, asyncio.current_task())
    err.print(f"worker {worker.name} started" + (" (drain)" if drain else ""))
    try:
        stats = await run_with_receipts(worker, settings, service, stop=stop, drain=drain)
    finally:
        await close_adapters(worker)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "nothing to do"
    err.print(
        f"worker stopped: {stats.handled} handled, recorded in {stats.commits} transactions "
        f"({summary})"
    )


async def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    return await _operate(settings, args.delivery, "retry", "queued again")


async def cmd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    return await _operate(settings, args.delivery, "cancel", "cancelled")


async def _operate(
    settings: Settings,
    delivery_ids: Sequence[int],
    action: str,
    done: str,
) -> int:
    """An operator's action on each delivery; one line each, exit 1 if any was refused.
    The audit log names the one who did it as ``cli:`` and their login name."""
    refused = 0
    perform = retry_delivery if action == "retry" else cancel_delivery
    try:
        by = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container user with no name
        by = "cli"
    async with open_service(settings) as service:
        for delivery_id in delivery_ids:
            try:
                entry = await perform(service, delivery_id, by=by)
            except ServiceError as exc:
                err.print(f"error: {exc.message}", markup=False, soft_wrap=True)
                refused += 1
                continue
            out.print(
                f"delivery {entry.id} ({entry.target_id}, {entry.channel.value}): {done}",
                markup=False,
            )
    return 1 if refused else 0


async def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings) as service:
        report = await campaign_report(service, args.campaign)
    if args.format == "json":
        print(report.model_dump_json(indent=2))
    elif args.format == "csv":
        sys.stdout.write(report_csv(report))
    else:
        print_report(report)
    return 0


async def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings) as service:
        purged = await purge_campaign(service, args.campaign, older_than_days=args.older_than)
    print(
        f"Removed the personal data of {purged.appeals} appeal(s) in {args.campaign} "
        f"({purged.supporters} supporter(s) with nothing left elsewhere, "
        f"{purged.reported} self-reported action(s)); the counts are unchanged."
    )
    if purged.pending:
        print(f"Kept {purged.pending} appeal(s) with a delivery still pending; purge again later.")
    return 0


async def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings) as service:
        await backup(service, args.to)
    print(f"Backed up to {args.to}; to restore, stop every process and put it in place.")
    return 0


async def cmd_log(settings: Settings, args: argparse.Namespace) -> int:
    log_filter = LogFilter.parse(
        campaign=args.campaign, status=args.status, channel=args.channel, target=args.target
    )
    show_campaign = log_filter.campaign is None
    async with open_service(settings) as service:
        entries = await delivery_changes(service, log_filter)
        print_log(entries, args.format, show_campaign=show_campaign)
        if not args.follow:
            return 0
        stop = asyncio.Event()
        install_stop_handlers(stop)
        since = max((e.updated_at for e in entries), default=utcnow())
        changes = follow_deliveries(
            service, log_filter, since=since, stop=stop, interval=args.interval, seen=entries
        )
        async with contextlib.aclosing(changes):
            async for fresh in changes:
                if fresh:
                    print_log(fresh, args.format, header=False, show_campaign=show_campaign)
    return 0


async def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from dispatcher.sandbox import Faults

    cfg = settings.sandbox
    sandbox = sandbox_from_settings(
        cfg,
        email_faults=Faults(
            fail_first=args.email_fail_first, refuse=frozenset(args.email_refuse or ())
        ),
        fax_faults=Faults(
            fail_first=args.fax_fail_first,
            busy_first=args.fax_busy_first,
            refuse=frozenset(args.fax_refuse or ()),
        ),
        x_faults=Faults(
            fail_first=args.x_fail_first,
            rate_limit_first=args.x_rate_limit_first,
            refuse=frozenset(args.x_refuse or ()),
        ),
        fax_dialect=settings.fax.provider,
    )
    try:
        await sandbox.start()
    except OSError as exc:
        raise UsageError(
            f"cannot start the sandbox on {cfg.host} (ports {cfg.smtp_port}, {cfg.fax_port}, "
            f"{cfg.x_port}): {exc.strerror}; is another sandbox running?"
        ) from exc
    out.print("Sandbox running (Ctrl-C to stop); it records what it receives:")
    out.print(f"  SMTP      {cfg.host}:{sandbox.smtp_port}   → {cfg.directory}/email/*.eml")
    out.print(
        f"  fax API   {sandbox.fax_base_url} ({sandbox.fax_dialect}) → {cfg.directory}/fax/*.pdf"
    )
    out.print(f"  X API     {sandbox.x_base_url}/2/tweets → {cfg.directory}/twitter/tweets.jsonl")
    stop = asyncio.Event()
    install_stop_handlers(stop)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
    return 0


async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from dispatcher.demo import ServeOptions, run_demo

    serve = ServeOptions(args.host, args.port) if args.serve else None
    return await run_demo(settings, out, serve)


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from dispatcher.web.app import create_app, server_config

    require_secret_when_live(settings)
    settings = served_at(settings, args.host, args.port)
    announce_channel_modes(settings, lambda line: err.print(line, markup=False))
    app = create_app(settings, run_worker=not args.no_worker, announce=err.print)
    config = server_config(app, settings, host=args.host, port=args.port, log_level=args.log_level)
    base = settings.public_url  # where supporters reach it (DISPATCHER_PUBLIC_URL, or here)
    err.print(f"serving {base}/c/<campaign>, {base}/operator and {base}/docs")
    await uvicorn.Server(config).serve()
    return 0


# ---------------------------------------------------------------- plumbing


Command = Callable[[Settings, argparse.Namespace], Awaitable[int]]


class _ShowDefaults(argparse.HelpFormatter):
    """Help that says each option's default, where there is one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS)
        if shown and action.option_strings and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatcher",
        description="Send supporters' appeals to officials by email, fax and X, and count them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=_ShowDefaults,
        )
        p.set_defaults(func=func)
        return p

    demo = add("demo", cmd_demo, "run the whole pipeline against the local sandbox and report")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="then keep the sandbox and the web pages running (Ctrl-C stops)",
    )

    serve = add("serve", cmd_serve, "run the HTTP service (API, pages) and, by default, a worker")
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="send nothing here; separate `dispatcher worker` processes send",
    )
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    for p in (demo, serve):
        p.add_argument("--host", default="127.0.0.1", help="address to listen on")
        p.add_argument("--port", type=int, default=8000, help="port to listen on")

    send = add("send", cmd_send, "submit one supporter's appeal (all chosen targets × channels)")
    send.add_argument("--campaign", required=True, help="campaign id (see `dispatcher campaigns`)")
    send.add_argument("--name", required=True, help="supporter's name, as signed")
    send.add_argument(
        "--email", required=True, help="supporter's email (receipts and links go to it)"
    )
    send.add_argument("--country", help="supporter's country, added under the signature")
    send.add_argument(
        "--target",
        action="append",
        metavar="ID",
        help="a target id; repeat for several (default: every target)",
    )
    send.add_argument(
        "--channel",
        action="append",
        metavar="CHANNEL",
        help="email, fax or twitter; repeat for several (default: every channel the target has)",
    )
    send.add_argument(
        "--message-file",
        metavar="PATH",
        help="your own letter body (UTF-8 text; default: the campaign's sample)",
    )
    send.add_argument(
        "--tweet", metavar="TEXT", help="your own tweet text (default: the campaign's)"
    )
    send.add_argument(
        "--language",
        metavar="LANG",
        help="letter language code (default: the campaign's default language)",
    )
    send.add_argument(
        "--reply-to",
        action="store_true",
        help="officials may reply to the supporter (campaigns that ask): the address is "
        "emailed a link, and its emails wait until it is followed",
    )

    worker = add("worker", cmd_worker, "send due deliveries until stopped (SIGINT/SIGTERM)")
    worker.add_argument(
        "--drain",
        action="store_true",
        help="exit once nothing is queued, sending or awaiting confirmation",
    )

    for name, func, what in (
        ("retry", cmd_retry, "queue failed, expired, cancelled or waiting deliveries, due now"),
        ("cancel", cmd_cancel, "cancel deliveries that have not been delivered yet"),
    ):
        operate = add(name, func, what)
        operate.add_argument("delivery", type=int, nargs="+", help="delivery id(s), as `log` shows")

    report = add("report", cmd_report, "a campaign's totals (actions = delivered deliveries)")
    report.add_argument("--campaign", required=True, help="campaign id")
    report.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )

    purge = add(
        "purge",
        cmd_purge,
        "remove supporters' personal data from a closed campaign, keeping its counts",
    )
    purge.add_argument("--campaign", required=True, help="campaign id (it must have closed)")
    purge.add_argument(
        "--older-than",
        type=float,
        default=0,
        metavar="DAYS",
        help="only appeals made more than DAYS ago (default: all)",
    )

    backup_cmd = add(
        "backup", cmd_backup, "copy the SQLite database while it is in use (PostgreSQL: pg_dump)"
    )
    backup_cmd.add_argument("--to", required=True, type=Path, help="the new file")

    log_cmd = add("log", cmd_log, "the delivery log: target, channel, status, attempts, last error")
    log_cmd.add_argument("--campaign", help="only this campaign")
    log_cmd.add_argument(
        "--status", help=f"only this status: {', '.join(s.value for s in DeliveryStatus)}"
    )
    log_cmd.add_argument(
        "--channel", help=f"only this channel: {', '.join(c.value for c in SENT_CHANNELS)}"
    )
    log_cmd.add_argument("--target", metavar="ID", help="only this target")
    log_cmd.add_argument(
        "--follow", action="store_true", help="keep printing changes as they happen"
    )
    log_cmd.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    log_cmd.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )

    add("campaigns", cmd_campaigns, "list campaigns with their deadline and whether they are open")
    add("migrate", cmd_migrate, "bring the database schema up to date (done automatically too)")

    sandbox = add("sandbox", cmd_sandbox, "run the local SMTP, fax-gateway and X-API sandbox")
    for flag, what in (
        ("--email-fail-first", "answer the first N emails with SMTP 451"),
        ("--fax-fail-first", "answer the first N fax requests with HTTP 503"),
        ("--fax-busy-first", "end the first N faxes with a busy line"),
        ("--x-fail-first", "answer the first N tweets with HTTP 503"),
        ("--x-rate-limit-first", "answer the first N tweets with HTTP 429"),
    ):
        sandbox.add_argument(flag, type=int, default=0, metavar="N", help=what)
    for flag, metavar, what in (
        ("--email-refuse", "ADDRESS", "refuse this recipient with SMTP 550 (repeatable)"),
        ("--fax-refuse", "NUMBER", "end faxes to this E.164 number as not operational"),
        ("--x-refuse", "HANDLE", "refuse posts mentioning this handle with HTTP 403"),
    ):
        sandbox.add_argument(flag, action="append", metavar=metavar, help=what)
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "DISPATCHER_" + "__".join(str(p).upper() for p in first["loc"])
        raise UsageError(f"setting {name} is invalid: {first['msg']}") from None


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (fewer system calls per socket operation: the
    worker makes many), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# Commands that run until stopped: their log says what they do (info); the others only
# warn.
LONG_RUNNING = frozenset({"serve", "worker"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("console", "debug" if args.verbose else "warning")
    try:
        settings = _settings()
        default = "info" if args.command in LONG_RUNNING else "warning"
        level = "debug" if args.verbose else settings.log_level or default
        configure_logging(settings.log_format, level, settings.secret_values())
        return int(_run(args.func(settings, args)))
    # One sentence on one line, however narrow the terminal (soft_wrap: no inserted breaks).
    except ServiceError as exc:
        err.print(f"error: {exc.message}", markup=False, soft_wrap=True)
        return 1
    except WorkerStopped as exc:
        err.print(f"error: the worker stopped: {exc}", markup=False, soft_wrap=True)
        return 1
    except (UsageError, ConfigurationError) as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
