"""Fax hours and the confirmation's bound, over real sockets: the sandbox fax gateway over
HTTP, the store's real SQL on SQLite and PostgreSQL, workers built as `dispatcher worker`
builds them (the fax hours come from the campaign file)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import zoneinfo
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dispatcher.fax_hours import FAX_HOURS, FaxHours
from dispatcher.i18n import speaking
from dispatcher.models import DeliveryStatus, LogEntry, format_time, utcnow
from dispatcher.outcomes import UNCONFIRMED
from dispatcher.runtime import build_worker, close_adapters
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service
from dispatcher.service.links import link_token
from dispatcher.service.status import appeal_status
from dispatcher.store import Store
from dispatcher.worker import Worker
from tests.conftest import OPEN_CAMPAIGN, settings_for, submitted, write_open_campaign
from tests.integration.conftest import appeal

XI_FAX, CUI_FAX = "+861062381025", "+12024952138"
NOW = utcnow()


def _window(zone: str, start: dt.timedelta, end: dt.timedelta) -> str:
    """A daily window from ``start`` to ``end`` after this moment, on ``zone``'s clock
    (crossing midnight where it does)."""
    local = NOW.astimezone(zoneinfo.ZoneInfo(zone))
    return f"{local + start:%H:%M}-{local + end:%H:%M}"


# Xi Jinping's line (Beijing time) opens in two hours; Cui Tiankai's (Washington) is open.
XI_HOURS = _window("Asia/Shanghai", dt.timedelta(hours=2), dt.timedelta(hours=3))
CUI_HOURS = _window("America/New_York", dt.timedelta(hours=-1), dt.timedelta(hours=1))
XI_WINDOW = FaxHours.parse(XI_HOURS, "Asia/Shanghai")


@pytest.fixture
def campaigns_dir(tmp_path: Path) -> Path:
    """The open copy of UA 61.21 with fax hours set around this moment."""
    directory = tmp_path / "campaigns"
    path = write_open_campaign(directory)
    text = path.read_text(encoding="utf-8")
    for zone, hours in (("Asia/Shanghai", XI_HOURS), ("America/New_York", CUI_HOURS)):
        text, found = re.subn(
            rf'^timezone = "{zone}"$',
            f'timezone = "{zone}"\nfax_hours = "{hours}"',
            text,
            flags=re.M,
        )
        assert found == 1
    path.write_text(text, encoding="utf-8")
    return directory


async def until(store: Store, check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    """Wait until ``check`` holds, looking again whenever the store announces a change
    (and every half second: a claim that only holds faxes back announces nothing)."""
    changed = asyncio.Event()

    async def watch() -> None:
        while not await check():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=0.5)
            changed.clear()

    async with store.events(lambda _event: changed.set()):
        await asyncio.wait_for(watch(), timeout=seconds)


def worker_for(
    service: Service, sandbox: Sandbox, campaigns_dir: Path, confirm_timeout: float = 7200
) -> Worker:
    settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
    fax = settings.fax.model_copy(update={"confirm_timeout_seconds": confirm_timeout})
    return build_worker(settings.model_copy(update={"fax": fax}), service)


async def by_target(store: Store) -> dict[str, LogEntry]:
    return {e.target_id: e for e in await store.list_deliveries()}


async def test_a_fax_outside_its_lines_hours_waits_for_the_opening_and_says_when(
    service: Service, store: Store, tmp_path: Path, campaigns_dir: Path
) -> None:
    receipt = await submitted(service, appeal(channels=["fax"]))
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=0.05, channels=["fax"]) as sandbox:
        worker = worker_for(service, sandbox, campaigns_dir)
        stop = asyncio.Event()
        run = asyncio.create_task(worker.run(stop=stop))
        try:

            async def settled() -> bool:
                entries = await by_target(store)
                return (
                    entries["cui-tiankai"].status is DeliveryStatus.DELIVERED
                    and entries["xi-jinping"].last_error is not None
                )

            await until(store, settled)
        finally:
            stop.set()
            await run
            await close_adapters(worker)
        # Only the open line was called.
        assert [fax.to for fax in sandbox.faxes] == [CUI_FAX]
    xi = (await by_target(store))["xi-jinping"]
    opening = XI_WINDOW.next_opening(NOW)
    assert opening - NOW > dt.timedelta(hours=1)
    assert xi.status is DeliveryStatus.QUEUED and xi.next_attempt_at == opening
    # Nothing was sent and no attempt was used: it waits, as a paced send does.
    assert xi.attempts == 0 and await store.list_attempts(xi.id) == []
    assert xi.last_error is not None and xi.last_error.error_class == FAX_HOURS
    assert f"only {XI_HOURS} (Asia/Shanghai)" in xi.last_error.message
    assert format_time(opening) in xi.last_error.message

    token = link_token(service, "status", receipt.appeal_id)
    opens, closes = XI_HOURS.split("-")
    for language, words in (
        ("en", f"only between {opens} and {closes}, China Time. It will go after"),
        ("zh", f"只在中国时间 {opens}至{closes}之间拨打。这份传真将在"),
    ):
        with speaking(language):
            status = await appeal_status(service, receipt.appeal_id, token)
        reasons = {d.target: d.reason for d in status.deliveries}
        assert reasons["cui-tiankai"] is None
        assert words in (reasons["xi-jinping"] or ""), reasons
        assert format_time(opening) in (reasons["xi-jinping"] or "")


async def test_the_claim_holds_every_fax_to_a_closed_line_until_it_opens(
    service: Service, store: Store
) -> None:
    """Whichever worker claims, at whatever time: the claim itself holds the faxes (real
    SQL on each database, time passed in)."""
    for n in range(3):
        await submitted(service, appeal(supporter_email=f"s{n}@example.org", channels=["fax"]))
    lines = {(OPEN_CAMPAIGN, XI_FAX): FaxHours.parse("08:00-20:00", "Asia/Shanghai")}
    # 13:00 UTC is 21:00 in Beijing: closed until 00:00 UTC (08:00 Beijing) the next day.
    evening = dt.datetime.combine(NOW.date() + dt.timedelta(days=1), dt.time(13), dt.UTC)
    morning = evening + dt.timedelta(hours=11)
    claimed = await store.claim_due_deliveries(
        "w1", limit=10, lease_seconds=30, now=evening, fax_hours=lines
    )
    assert {c.address for c in claimed} == {CUI_FAX}  # one, the oldest: one fax per line
    waiting = [e for e in await store.list_deliveries() if e.address == XI_FAX]
    assert len(waiting) == 3
    for entry in waiting:
        assert entry.status is DeliveryStatus.QUEUED and entry.attempts == 0
        assert entry.next_attempt_at == morning  # all of the line's queue, in one claim
    # Another worker a minute before the opening gets nothing for that line either.
    early = await store.claim_due_deliveries(
        "w2", limit=10, lease_seconds=30, now=morning - dt.timedelta(minutes=1), fax_hours=lines
    )
    assert [c for c in early if c.address == XI_FAX] == []
    # At the opening the oldest goes, and the log's note that it waits is gone.
    opened = await store.claim_due_deliveries(
        "w2", limit=10, lease_seconds=30, now=morning, fax_hours=lines
    )
    [first] = [c for c in opened if c.address == XI_FAX]
    assert first.id == min(e.id for e in waiting) and first.attempts == 1
    [entry] = [e for e in await store.list_deliveries() if e.id == first.id]
    assert entry.status is DeliveryStatus.SENDING and entry.last_error is None


async def test_an_accepted_fax_never_confirmed_ends_failed_with_the_reason(
    service: Service, store: Store, tmp_path: Path, campaigns_dir: Path
) -> None:
    receipt = await submitted(service, appeal(targets=["cui-tiankai"], channels=["fax"]))
    # The gateway takes the fax and keeps it "in progress" for an hour: it never confirms.
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=3600, channels=["fax"]) as sandbox:
        worker = worker_for(service, sandbox, campaigns_dir, confirm_timeout=0.3)
        try:
            await asyncio.wait_for(worker.run(drain=True), timeout=20)
        finally:
            await close_adapters(worker)
        assert [fax.status for fax in sandbox.faxes] in (["queued"], ["inprogress"])
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.FAILED
    assert entry.last_error is not None and entry.last_error.error_class == UNCONFIRMED
    assert entry.last_error.message.startswith(
        "the gateway did not confirm the fax within 0.3 s of accepting it (last look-up: "
        "gateway status "
    )
    # The attempt ends unknown: the gateway has the fax, and a retry looks it up first.
    [attempt] = await store.list_attempts(entry.id)
    assert attempt.outcome == "unknown" and attempt.error is not None
    assert attempt.error.error_class == UNCONFIRMED
    token = link_token(service, "status", receipt.appeal_id)
    status = await appeal_status(service, receipt.appeal_id, token)
    assert status.deliveries[0].reason == (
        "The fax service accepted the fax but did not confirm in time that it went through. "
        "We will not try again."
    )


async def test_a_gateway_that_cannot_say_at_the_last_look_up_ends_the_fax_failed(
    service: Service, store: Store, tmp_path: Path, campaigns_dir: Path
) -> None:
    await submitted(service, appeal(targets=["cui-tiankai"], channels=["fax"]))
    async with Sandbox(tmp_path / "box", fax_transmit_seconds=3600, channels=["fax"]) as sandbox:
        first = worker_for(service, sandbox, campaigns_dir)
        stop = asyncio.Event()
        run = asyncio.create_task(first.run(stop=stop))
        try:

            async def accepted() -> bool:
                [entry] = await store.list_deliveries()
                return entry.status is DeliveryStatus.AWAITING_CONFIRMATION

            await until(store, accepted)
        finally:
            stop.set()
            await run
            await close_adapters(first)
        last = worker_for(service, sandbox, campaigns_dir, confirm_timeout=0.01)
    # The gateway is gone (nothing listens on its port) when the bound runs out.
    try:
        await asyncio.wait_for(last.run(drain=True), timeout=20)
    finally:
        await close_adapters(last)
    [entry] = await store.list_deliveries()
    assert entry.status is DeliveryStatus.FAILED
    assert entry.last_error is not None and entry.last_error.error_class == UNCONFIRMED
    assert "(last look-up: status unavailable" in entry.last_error.message
    assert "cannot reach fax gateway" in entry.last_error.message
    assert [a.outcome for a in await store.list_attempts(entry.id)] == ["unknown"]
