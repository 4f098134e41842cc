"""The command line's grammar: every command, its arguments and its help."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from dispatcher.models import SENT_CHANNELS, DeliveryStatus
from dispatcher.settings import Settings

Command = Callable[[Settings, argparse.Namespace], Awaitable[int]]


def _command(module: str, name: str) -> Command:
    """``dispatcher.cli.<module>.<name>``, imported only when that command runs: a worker
    does not load the web app, the reports or the intake rules, and its start-up counts."""

    async def run(settings: Settings, args: argparse.Namespace) -> int:
        found: Command = getattr(importlib.import_module(f"dispatcher.cli.{module}"), name)
        return await found(settings, args)

    return run


cmd_backup = _command("admin", "cmd_backup")
cmd_migrate = _command("admin", "cmd_migrate")
cmd_purge = _command("admin", "cmd_purge")
cmd_campaigns = _command("operator", "cmd_campaigns")
cmd_cancel = _command("operator", "cmd_cancel")
cmd_log = _command("operator", "cmd_log")
cmd_report = _command("operator", "cmd_report")
cmd_retry = _command("operator", "cmd_retry")
cmd_demo = _command("processes", "cmd_demo")
cmd_sandbox = _command("processes", "cmd_sandbox")
cmd_serve = _command("serving", "cmd_serve")
cmd_worker = _command("processes", "cmd_worker")
cmd_send = _command("supporter", "cmd_send")


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
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        help="HTTP processes sharing the port, e.g. one per CPU (only the first sends)",
    )
    # A process started by another's --processes: it listens on the shared port, quietly.
    serve.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
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
