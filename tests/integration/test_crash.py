"""Crash and scale: four real worker processes, killed with SIGKILL while they send.

The sandbox servers run in this process and are reached over sockets; the workers are
``dispatcher worker`` processes on the same database (SQLite or PostgreSQL). After at
least ten kills at random moments, each followed by a replacement worker, the queue must
drain within a minute of the last kill, and then: nothing lost, every delivery arrived,
the report equals what arrived, only sends in flight at a kill went out twice (each of
them marked), and no fax number ever had two faxes in flight.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from dispatcher.models import Channel, DeliveryStatus, LogEntry, Settlement
from dispatcher.render.tweet import post_reference
from dispatcher.runtime import open_service
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.reporting import campaign_report
from dispatcher.service.validation import AppealRequest
from dispatcher.settings import Settings
from tests.conftest import submitted
from tests.waiting import eventually

DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
CAMPAIGN = "crash"
TARGETS = 10  # each with an email address, a fax number and an X handle
APPEALS = 70  # × 10 targets × 3 channels = 2,100 deliveries
WORKERS = 4
KILLS = 10
LEASE_SECONDS = 2.0


def write_campaign(directory: Path) -> None:
    deadline = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    targets = "".join(
        f"""
[[targets]]
id = "official-{n}"
name = "Official {n}"
salutation = "Dear Official {n}"
email = "official{n}@gov.example"
fax = "+1 202 555 01{n:02d}"
twitter = ["@official_{n}"]
"""
        for n in range(TARGETS)
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{CAMPAIGN}.toml").write_text(
        f'''id = "{CAMPAIGN}"
title = "Crash test"
organisation = "Test"
deadline = {deadline.isoformat()}
default_language = "en"
tweet = "Release them now."
# Posts from the organisation's (sandbox) account: the crash test kills their senders too.
x_mode = "organisation"

[letter.en]
subject = "Release them"
body = "I urge you to release them."
{targets}''',
        encoding="utf-8",
    )


async def seed(service: Service) -> dict[str, str]:
    """The appeals; returns appeal id → supporter name."""
    names = {}
    for n in range(APPEALS):
        name = f"Supporter {n}"
        receipt = await submitted(
            service,
            AppealRequest(
                campaign_id=CAMPAIGN,
                supporter_name=name,
                supporter_email=f"supporter{n}@example.org",
                channels=["email", "fax", "twitter"],
            ),
        )
        names[receipt.appeal_id] = name
    return names


def worker_env(settings: Settings, sandbox: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        {
            "DISPATCHER_DATABASE_URL": settings.database_url,
            "DISPATCHER_CAMPAIGNS_DIR": str(settings.campaigns_dir),
            "DISPATCHER_SANDBOX__SMTP_PORT": str(sandbox.smtp_port),
            "DISPATCHER_SANDBOX__FAX_PORT": str(sandbox.fax_port),
            "DISPATCHER_SANDBOX__X_PORT": str(sandbox.x_port),
            "DISPATCHER_SANDBOX__FAX_TRANSMIT_SECONDS": "0.02",
            "DISPATCHER_WORKER__LEASE_SECONDS": str(LEASE_SECONDS),
            "DISPATCHER_WORKER__IDLE_SECONDS": "0.1",
            "DISPATCHER_WORKER__TWITTER_CONCURRENCY": "8",
            # Pacing on (its rows are locked by every claim), at a rate this test never meets.
            "DISPATCHER_EMAIL__PER_RECIPIENT_PER_MINUTE": "600",
            "DISPATCHER_RETRY__BASE_SECONDS": "0.05",
            "DISPATCHER_RETRY__MAX_SECONDS": "0.2",
        }
    )
    return env


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        DISPATCHER,
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def received_per_delivery(
    sandbox: Sandbox, entries: list[LogEntry], names: dict[str, str]
) -> Counter[int]:
    """How many times the sandbox received each delivery (fax: transmissions that ended)."""
    got: Counter[int] = Counter()
    for message in sandbox.emails:
        match = re.search(r"<delivery-(\d+)\.", str(message["Message-ID"]))
        if match is None:  # a supporter's receipt, not a delivery
            assert str(message["Subject"]).startswith(("Your appeal:", "Not delivered:"))
            continue
        got[int(match.group(1))] += 1
    for fax in sandbox.faxes:
        if fax.status == "success":
            got[int(fax.tags["delivery_id"])] += 1
    tweets = Counter(tweet["text"] for tweet in sandbox.tweets)
    for entry in entries:
        if entry.channel is Channel.TWITTER:
            name = names[entry.appeal_id]
            got[entry.id] += sum(
                count
                for text, count in tweets.items()
                if text.startswith(entry.address + " ")
                and text.endswith(f"— {name} (ref {post_reference(entry.appeal_id)})")
            )
    return got


def fax_lines_overlap(sandbox: Sandbox) -> list[str]:
    """Faxes to one number whose transmissions overlapped in time."""
    problems = []
    by_number: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for fax in sandbox.faxes:
        assert fax.completed_at is not None, f"fax {fax.id} never finished"
        by_number.setdefault(fax.to, []).append((fax.created_at, fax.completed_at))
    for number, spans in by_number.items():
        spans.sort()
        for (_, previous_end), (start, _) in itertools.pairwise(spans):
            if start < previous_end:
                problems.append(f"{number}: a fax started at {start} before {previous_end}")
    return problems


async def kill_and_restart(
    service: Service,
    workers: list[asyncio.subprocess.Process],
    env: dict[str, str],
    rng: random.Random,
) -> list[float]:
    """``KILLS`` SIGKILLs at random moments once the workers are sending, each victim
    replaced at once; kill times."""
    kill_times = []
    queued = await service.store.pending_count()

    async def sending() -> bool:
        return await service.store.pending_count() < queued

    await eventually(sending, what="the workers' first sends recorded", within=60, every=0.1)
    for _ in range(KILLS):
        # Real time, on purpose: the kills strike at random moments of the sending.
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        victim = workers.pop(rng.randrange(len(workers)))
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        kill_times.append(time.monotonic())
        workers.append(await start_worker(env))
    return kill_times


async def wait_for_drain(service: Service, deadline_seconds: float) -> float:
    started = time.monotonic()
    while await service.store.pending_count() > 0:
        assert time.monotonic() - started < deadline_seconds, "the queue did not drain"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def test_workers_killed_while_sending_lose_nothing_and_resend_only_in_flight(
    database_url: str, tmp_path: Path
) -> None:
    write_campaign(tmp_path / "campaigns")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        campaigns_dir=tmp_path / "campaigns",
    )
    rng = random.Random(61_21)
    async with (
        Sandbox(tmp_path / "sandbox", fax_transmit_seconds=0.02) as sandbox,
        open_service(settings) as service,
    ):
        names = await seed(service)
        env = worker_env(settings, sandbox)
        workers = [await start_worker(env) for _ in range(WORKERS)]
        try:
            kill_times = await kill_and_restart(service, workers, env, rng)
            pending_at_last_kill = await service.store.pending_count()
            drain_seconds = await wait_for_drain(service, deadline_seconds=60)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            await asyncio.gather(*(worker.wait() for worker in workers))
        sandbox.delivered_counts()  # brings every fax to its final status
        entries = await service.store.list_deliveries()
        report = await campaign_report(service, CAMPAIGN)
        cut_off = 0
        for entry in entries:
            attempts = await service.store.list_attempts(entry.id)
            cut_off += sum(1 for a in attempts if a.error and a.error.error_class == "LeaseExpired")
        got = received_per_delivery(sandbox, entries, names)
        overlaps = fax_lines_overlap(sandbox)
        unmarked = {  # what each resend not marked as one went through
            entry.id: (
                entry.channel.value,
                [
                    (a.number, a.worker, f"{a.started_at:%T.%f}", a.outcome, a.error)
                    for a in await service.store.list_attempts(entry.id)
                ],
                [
                    (f"{fax.created_at:%T.%f}", fax.status)
                    for fax in sandbox.faxes
                    if fax.tags.get("delivery_id") == str(entry.id)
                ],
            )
            for entry in entries
            if got[entry.id] > 1 and entry.settlement is not Settlement.POSSIBLE_DUPLICATE
        }

    total = APPEALS * TARGETS * 3
    resent = {delivery_id: n - 1 for delivery_id, n in got.items() if n > 1}
    settled = Counter(entry.settlement for entry in entries)
    print(
        f"\n{len(kill_times)} kills; {total} deliveries ({pending_at_last_kill} pending at the "
        f"last kill, drained {drain_seconds:.1f} s after it); {cut_off} sends cut off by a "
        f"kill; {sum(resent.values())} sent twice; {settled[Settlement.RECONCILED]} "
        f"reconciled; {settled[Settlement.POSSIBLE_DUPLICATE]} marked possible duplicates"
    )
    assert len(kill_times) >= KILLS
    assert len(entries) == total
    undelivered = [(e.id, e.channel, e.status, e.attempts, e.last_error) for e in entries]
    assert [u for u in undelivered if u[2] is not DeliveryStatus.DELIVERED] == []
    assert report.rehearsal.delivered == total  # the sandbox's: counted apart
    # Every delivery arrived (at least once: a Counter key alone is not an arrival); the
    # report counts each once.
    assert sorted(got) == sorted(entry.id for entry in entries)
    assert [e.id for e in entries if got[e.id] < 1] == []
    # Only sends in flight at a kill went out again, and every one of them is marked.
    assert sum(resent.values()) <= cut_off
    assert unmarked == {}
    by_id = {entry.id: entry for entry in entries}
    assert all(by_id[i].channel is Channel.EMAIL for i in resent)  # fax and X reconcile
    assert report.possible_duplicates == settled[Settlement.POSSIBLE_DUPLICATE]
    assert overlaps == []
    assert drain_seconds < 60
