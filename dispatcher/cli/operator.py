"""An operator's commands: the campaigns, the delivery log, retry and cancel, the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from collections.abc import Sequence

from rich.table import Column, Table

from dispatcher.models import utcnow
from dispatcher.output import err, out, print_log, print_report
from dispatcher.runtime import install_stop_handlers, load_catalog, open_service
from dispatcher.service import ServiceError
from dispatcher.service.log import LogFilter, delivery_changes, follow_deliveries
from dispatcher.service.operator import cancel_delivery, retry_delivery
from dispatcher.service.reporting import campaign_report, report_csv
from dispatcher.settings import Settings


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
