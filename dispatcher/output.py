"""Console output shared by the CLI commands and the demo (rich tables, JSON lines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from dispatcher.models import AppealReceipt, DeliveryStatus, LogEntry, format_time

if TYPE_CHECKING:  # imported where used: a worker's start-up prints but reports nothing
    from dispatcher.service.reporting import CampaignReport, Counts

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_receipt(receipt: AppealReceipt) -> None:
    if receipt.suppressed:
        out.print(
            "Nothing stored: the owner of this address asked us to accept nothing in its name."
        )
        return
    if receipt.is_repeat:
        out.print("Already counted: these deliveries exist; nothing new was stored.")
    else:
        out.print(
            f"Appeal [bold]{receipt.appeal_id}[/] stored with {len(receipt.created)} deliveries."
        )
    table = Table("delivery", "target", "channel", "status")
    for d in receipt.created:
        table.add_row(str(d.id), d.target_id, d.channel.value, d.status.value)
    for d in receipt.already_counted:
        table.add_row(
            str(d.id), d.target_id, d.channel.value, f"{d.status.value} (already counted)"
        )
    out.print(table)


def print_report(report: CampaignReport) -> None:
    state = "open" if report.open else "closed"
    out.print(
        f"[bold]{report.campaign}[/] — {report.title} "
        f"(deadline {report.deadline.isoformat()}, {state})"
    )
    out.print(
        f"appeals {report.appeals}   supporters {report.supporters}   "
        f"[bold green]actions {report.actions}[/] (delivered; the number shared with officials)"
    )
    if report.reconciled or report.possible_duplicates:
        out.print(
            f"after a crash or a lost connection: {report.reconciled} reconciled with the "
            f"provider, {report.possible_duplicates} sent again (possible duplicates); "
            "each counted once"
        )
    if any(sum(counts.in_order()) for counts in report.channels.values()):
        out.print(_counts_table(report.targets, report.channels))
    else:
        out.print("no delivery to a real provider yet")
    rehearsal = report.rehearsal
    if rehearsal.channels_now or rehearsal.delivered:
        now = ", ".join(rehearsal.channels_now) or "none now"
        out.print(
            f"[bold yellow]rehearsal[/] (the built-in sandbox; nothing reached the officials, "
            f"never counted; rehearsing: {now}): appeals {rehearsal.appeals}   "
            f"supporters {rehearsal.supporters}   delivered to the sandbox {rehearsal.delivered}"
        )
        out.print(_counts_table(rehearsal.targets, rehearsal.channels))
    unverified = report.unverified
    out.print(
        f"[bold]unverified[/] (X posts handed to their supporters to send themselves; never "
        f"counted as actions): {unverified.handed_off}, of which {unverified.opened} opened"
    )
    if any(s.source or s.utm_source or s.utm_medium or s.utm_campaign for s in report.sources):
        sources = Table("source", "utm_source", "utm_medium", "utm_campaign", "appeals",
                        "actions", "rehearsal", title="where the appeals came from")  # fmt: skip
        for s in report.sources:
            tags = (s.source, s.utm_source, s.utm_medium, s.utm_campaign)
            sources.add_row(
                *(t or "—" for t in tags), *map(str, (s.appeals, s.actions, s.rehearsal))
            )
        out.print(sources)
    reported = report.self_reported
    if reported.total:
        out.print(f"self-reported by supporters (counted apart): {reported.total}")
        mine = Table("target", "calls", "letters")
        for target_id, kinds in reported.targets.items():
            mine.add_row(target_id, str(kinds.get("call", 0)), str(kinds.get("letter", 0)))
        out.print(mine)
    else:
        out.print("self-reported by supporters (counted apart): none")


def _counts_table(targets: dict[str, dict[str, Counts]], channels: dict[str, Counts]) -> Table:
    from dispatcher.service.reporting import BUCKETS

    table = Table("target", "channel", *BUCKETS)
    for target_id, by_channel in targets.items():
        for channel, counts in by_channel.items():
            table.add_row(target_id, channel, *(str(n) for n in counts.in_order()))
    for channel, counts in channels.items():
        table.add_row("[bold]all[/]", channel, *(f"[bold]{n}[/]" for n in counts.in_order()))
    return table


def print_log(
    entries: Sequence[LogEntry], fmt: str, *, header: bool = True, show_campaign: bool = True
) -> None:
    if fmt == "json":
        from dispatcher.service.views import DeliveryView

        for entry in entries:
            print(DeliveryView.of(entry).model_dump_json(by_alias=True), flush=True)
        return
    if not entries and header:
        out.print("No deliveries match.")
        return
    if out.width < WIDE:
        _print_log_lines(entries, show_campaign=show_campaign)
        return
    table = Table(show_header=header, box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ("updated", "id", "campaign", "target", "channel", "status", "tries")
    for name in columns if show_campaign else tuple(c for c in columns if c != "campaign"):
        table.add_column(name, no_wrap=True)
    table.add_column("last error", overflow="fold", ratio=1, min_width=20)
    for e in entries:
        error = ""
        if e.last_error is not None:
            code = f" {e.last_error.code}" if e.last_error.code else ""
            error = f"{e.last_error.error_class}{code}: {e.last_error.message}"
        cells = [format_time(e.updated_at), str(e.id), e.campaign_id, e.target_id]
        if not show_campaign:
            cells.pop(2)
        status = _status_markup(e.status)
        if e.settlement is not None:
            status += f" ({e.settlement.value.replace('_', ' ')})"
        table.add_row(*cells, _how(e), status, str(e.attempts), error)
    out.print(table)


# Narrower than this (80 columns, or piped), each delivery is a line with the error on the
# next: no column is ever squeezed to a few letters a line.
WIDE = 120


def _print_log_lines(entries: Sequence[LogEntry], *, show_campaign: bool) -> None:
    for e in entries:
        where = f"{e.campaign_id}  " if show_campaign else ""
        status = _status_markup(e.status)
        if e.settlement is not None:
            status += f" ({e.settlement.value.replace('_', ' ')})"
        tries = f"{e.attempts} {'try' if e.attempts == 1 else 'tries'}"
        out.print(
            f"{format_time(e.updated_at)}  #{e.id}  {where}{e.target_id}  {_how(e)}  "
            f"{status}  {tries}"
        )
        if e.last_error is not None:
            code = f" {e.last_error.code}" if e.last_error.code else ""
            error = f"{e.last_error.error_class}{code}: {e.last_error.message}"
            out.print(f"    {error}", markup=False)


def _how(entry: LogEntry) -> str:
    """The channel, and the provider it went through ("fax · sinch", "email · sandbox")."""
    return f"{entry.channel.value} · {entry.provider}" if entry.provider else entry.channel.value


def _status_markup(status: DeliveryStatus) -> str:
    colour = {
        DeliveryStatus.DELIVERED: "green",
        DeliveryStatus.FAILED: "red",
        DeliveryStatus.EXPIRED: "red",
        DeliveryStatus.CANCELLED: "yellow",
    }.get(status, "cyan")
    return f"[{colour}]{status.value}[/]"
