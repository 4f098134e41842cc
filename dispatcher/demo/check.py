"""After the run: the X posts as the operator sees them, and the report checked against
what the sandbox received."""

from __future__ import annotations

from rich.console import Console

from dispatcher.demo.prepare import DEMO_CAMPAIGN, SANDBOX_DIR, demo_environment
from dispatcher.models import Channel, DeliveryStatus
from dispatcher.output import print_log, print_report
from dispatcher.service import Service
from dispatcher.service.links import link_token
from dispatcher.service.log import LogFilter, delivery_page
from dispatcher.service.reporting import CampaignReport
from dispatcher.service.status import appeal_status


async def print_x_posts(service: Service, console: Console) -> None:
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


def print_outcome(console: Console, report: CampaignReport, received: dict[str, int]) -> bool:
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
