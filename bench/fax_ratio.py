"""Benchmark: the dispatcher's fax rate as a fraction of what the fax gateway takes.

In one run, against one `dispatcher sandbox` process (its Phaxio-compatible gateway
accepts each fax, "transmits" it for a moment and files it, as a gateway would): a blast
client (aiohttp, the fastest asyncio HTTP client here, with as many concurrent uploads as
the worker has fax slots) submitting a ready-made letter PDF of the same size as ours,
then ``dispatcher worker --drain`` over the queued faxes (each rendered, submitted, then
polled until transmitted: one fax in flight per number), then the blast client again.
Rates are submissions per second from the gateway's own clock, first to last.

    .venv/bin/python -m bench.fax_ratio --faxes 2000
    .venv/bin/python -m bench.fax_ratio --faxes 2000 --confirm
    .venv/bin/python -m bench.fax_ratio --database postgres --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
import tomllib
from pathlib import Path

import aiohttp

from bench.common import (
    Scratch,
    add_database_options,
    arrival_rate,
    free_port,
    print_result,
    start_sandbox,
)
from dispatcher.cli import _run
from dispatcher.models import Channel, ClaimedDelivery, DeliveryStatus
from dispatcher.render.fax import render_fax_pdf
from dispatcher.runtime import open_service
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import submit_appeal
from dispatcher.service.reporting import campaign_report

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "fax-bench"
TARGETS = 100  # one fax number each: the gateway sends one fax at a time per number
AUTH = aiohttp.BasicAuth("bench", "bench")
POLL_SECONDS = 0.05  # the worker's poll interval here too


def numbers() -> list[str]:
    return [f"+1202555{n:04d}" for n in range(100, 100 + TARGETS)]


def write_campaign(directory: Path) -> tuple[str, str]:
    """A campaign of TARGETS officials with a fax each, and UA 61.21's English letter."""
    shipped = tomllib.loads((ROOT / "config/campaigns/ua-61-21.toml").read_text("utf-8"))
    letter = shipped["letter"]["en"]
    deadline = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    targets = "".join(
        f'\n[[targets]]\nid = "official-{n}"\nname = "Official {n}"\n'
        f'salutation = "Dear Official {n}"\nfax = "{number}"\n'
        for n, number in enumerate(numbers())
    )
    directory.mkdir(parents=True)
    (directory / f"{CAMPAIGN}.toml").write_text(
        f'id = "{CAMPAIGN}"\ntitle = "Fax benchmark"\norganisation = "Bench"\n'
        f'deadline = {deadline.isoformat()}\ndefault_language = "en"\n'
        'tweet = "Release them."\n\n[letter.en]\n'
        f"subject = {json.dumps(letter['subject'])}\nbody = {json.dumps(letter['body'])}\n"
        + targets,
        encoding="utf-8",
    )
    return letter["subject"], letter["body"]


def sample_pdf(subject: str, body: str) -> bytes:
    """Our rendering of the letter once: what the blast client uploads, ready-made."""
    delivery = ClaimedDelivery(
        id=1,
        appeal_id="bench",
        campaign_id=CAMPAIGN,
        target_id="official-0",
        target_name="Official 0",
        salutation="Dear Official 0",
        channel=Channel.FAX,
        address=numbers()[0],
        status=DeliveryStatus.SENDING,
        attempts=1,
        provider_ref=None,
        expires_at=dt.datetime.now(dt.UTC),
        supporter_name="Supporter 0",
        supporter_email="supporter0@example.org",
        supporter_country=None,
        language="en",
        subject=subject,
        body=body,
        tweet=None,
        earlier_outcome_unknown=False,
    )
    return render_fax_pdf(delivery, header_text="Urgent appeal")


class Filed:
    """The faxes the sandbox gateway has filed (transmitted), read in phases."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen: set[Path] = set()

    async def take(self, expected: int) -> list[dt.datetime]:
        """Arrival times of the faxes filed since the last take, once ``expected`` are."""
        while True:
            fresh = set(self.directory.glob("*.json")) - self.seen
            if len(fresh) >= expected:
                break
            await asyncio.sleep(0.2)
        self.seen |= fresh
        return [
            dt.datetime.fromisoformat(json.loads(path.read_text("utf-8"))["created_at"])
            for path in fresh
        ]


async def blast(base_url: str, count: int, concurrency: int, pdf: bytes, confirm: bool) -> None:
    """``count`` submissions, ``concurrency`` at a time. With ``confirm``, each fax is then
    asked about until transmitted (beside the submissions, as our worker polls), so the
    gateway serves what a sender needs to know that a fax went, not only the uploads."""
    targets = [numbers()[n % TARGETS] for n in range(count)]
    polls: list[asyncio.Task[None]] = []

    async def poll(session: aiohttp.ClientSession, fax_id: int) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            async with session.get(f"{base_url}/v2/faxes/{fax_id}", auth=AUTH) as response:
                if (await response.json())["data"]["status"] == "success":
                    return

    async def one_client(session: aiohttp.ClientSession) -> None:
        while targets:
            form = aiohttp.FormData()
            form.add_field("to", targets.pop())
            form.add_field("header_text", "Urgent appeal")
            form.add_field("file", pdf, filename="appeal.pdf", content_type="application/pdf")
            async with session.post(f"{base_url}/v2/faxes", data=form, auth=AUTH) as response:
                assert response.status == 200, await response.text()
                fax_id = (await response.json())["data"]["id"]
            if confirm:
                polls.append(asyncio.create_task(poll(session, fax_id)))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one_client(session) for _ in range(concurrency)))
        await asyncio.gather(*polls)


async def main(args: argparse.Namespace) -> int:
    async with Scratch(args) as scratch:
        subject, body = write_campaign(scratch.settings.campaigns_dir)
        pdf = sample_pdf(subject, body)
        port = free_port()
        transmit = {"DISPATCHER_SANDBOX__FAX_TRANSMIT_SECONDS": "0.02"}
        server = await start_sandbox(scratch.work / "sandbox", transmit, fax_port=port)
        base_url = f"http://127.0.0.1:{port}"
        filed = Filed(scratch.work / "sandbox" / "fax")
        appeals = args.faxes // TARGETS
        try:
            async with open_service(scratch.settings) as service:
                for n in range(appeals):
                    request = AppealRequest(
                        campaign_id=CAMPAIGN,
                        supporter_name=f"Supporter {n}",
                        supporter_email=f"supporter{n}@example.org",
                        channels=["fax"],
                        receipt=False,  # faxes are measured, not supporters' receipts
                    )
                    result = await submit_appeal(service, request)
                    if isinstance(result, Rejected):
                        raise result.first
            await blast(base_url, args.faxes, args.slots, pdf, args.confirm)  # warm-up
            await filed.take(args.faxes)
            await blast(base_url, args.faxes, args.slots, pdf, args.confirm)
            before = arrival_rate(await filed.take(args.faxes))
            await scratch.hold_until_started()
            started = time.perf_counter()
            codes = await scratch.run_workers(
                {
                    "DISPATCHER_FAX__BASE_URL": base_url,
                    "DISPATCHER_FAX__API_KEY": "bench",
                    "DISPATCHER_FAX__API_SECRET": "bench",
                    "DISPATCHER_FAX__POLL_SECONDS": str(POLL_SECONDS),
                    "DISPATCHER_WORKER__FAX_CONCURRENCY": str(args.slots),
                }
            )
            wall = time.perf_counter() - started
            ours = await filed.take(appeals * TARGETS)
            await blast(base_url, args.faxes, args.slots, pdf, args.confirm)
            after = arrival_rate(await filed.take(args.faxes))
            async with open_service(scratch.settings) as service:
                report = await campaign_report(service, CAMPAIGN)
        finally:
            server.terminate()
            await server.wait()
    polled = ", each polled until transmitted" if args.confirm else ""
    return print_result(
        unit="faxes",
        blast=f"aiohttp, {args.slots} concurrent, {len(pdf):,}-byte PDF{polled}",
        rates=(before, arrival_rate(ours), after),
        dispatcher=f"{scratch.describe()}, {args.slots} fax slots",
        codes=codes,
        wall=wall,
        took=len(ours),
        recorded=report.channels["fax"].delivered,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_options(parser)
    parser.add_argument("--faxes", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=8, help="concurrent faxes (both sides)")
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="the blast client also polls each fax until transmitted, as the worker does",
    )
    sys.exit(_run(main(parser.parse_args())))
