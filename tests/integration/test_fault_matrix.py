"""The network faults of the fault matrix, per channel, over real sockets: a connection
reset mid-transfer, a server that never answers (a read timeout), and one that drips its
answer one byte a second. Each is one attempt as the worker makes it (with its fast
retries), and what the outcome rules decide."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dispatcher.channels.email import EmailAdapter
from dispatcher.channels.phaxio import PhaxioAdapter as FaxAdapter
from dispatcher.channels.twitter import TwitterAdapter
from dispatcher.models import AttemptOutcome, Channel, DeliveryStatus, Settlement
from dispatcher.sandbox import Faults, Sandbox
from tests.integration.test_adapters import (
    attempt_once,
    delivery,
    email_adapter,
    fax_adapter,
    sandbox_with,
    x_adapter,
)

# The adapters give up on an answer after this long; the dripping server sends a byte a
# second, so a 26-byte answer would take 26 s.
TIMEOUT = 1.5


def adapter_for(box: Sandbox, channel: str) -> EmailAdapter | FaxAdapter | TwitterAdapter:
    if channel == "email":
        return email_adapter(box.smtp_port, timeout=TIMEOUT)
    if channel == "fax":
        return fax_adapter(box.fax_base_url, timeout=TIMEOUT)
    return x_adapter(box.x_base_url, timeout=TIMEOUT)


def received(box: Sandbox, channel: str) -> int:
    if channel == "email":
        return len(box.emails)
    return len(box.faxes) if channel == "fax" else len(box.tweets)


# channel, fault → (copies the provider holds, settlement). A reset comes before the
# provider took anything; a stall or a drip after it took the message. Email cannot be
# asked what arrived: it goes again with the same Message-ID and is marked. The fax
# gateway is asked by tag and the fax found; X refuses the repeat as a duplicate.
MATRIX = {
    ("email", "reset_first"): (1, Settlement.POSSIBLE_DUPLICATE),
    ("email", "stall_first"): (2, Settlement.POSSIBLE_DUPLICATE),
    ("email", "drip_first"): (2, Settlement.POSSIBLE_DUPLICATE),
    ("fax", "reset_first"): (1, None),
    ("fax", "stall_first"): (1, Settlement.RECONCILED),
    ("fax", "drip_first"): (1, Settlement.RECONCILED),
    ("twitter", "reset_first"): (1, None),
    ("twitter", "stall_first"): (1, Settlement.RECONCILED),
    ("twitter", "drip_first"): (1, Settlement.RECONCILED),
}


@pytest.mark.parametrize(("channel", "fault"), list(MATRIX))
async def test_a_network_fault_is_retried_and_reconciled_not_lost(
    tmp_path: Path, channel: str, fault: str
) -> None:
    copies, settlement = MATRIX[(channel, fault)]
    faults = Faults(**{fault: 1}, drip_seconds=1.0)  # type: ignore[arg-type]
    async with sandbox_with(tmp_path, channel, faults, fax_transmit_seconds=0) as box:
        adapter = adapter_for(box, channel)
        try:
            attempt, update = await attempt_once(adapter, delivery(Channel(channel)))
        finally:
            await adapter.aclose()
        held = received(box, channel)
    assert attempt.tries == 2, attempt  # the fault, then the fast retry
    assert update.status in (DeliveryStatus.DELIVERED, DeliveryStatus.AWAITING_CONFIRMATION)
    assert (held, update.settlement) == (copies, settlement)


@pytest.mark.parametrize("channel", ["fax", "twitter"])
async def test_a_429_without_a_wait_pauses_the_channel_a_minute(
    tmp_path: Path, channel: str
) -> None:
    """No ``Retry-After`` (fax) or ``x-rate-limit-reset`` (X): the channel pauses for 60 s
    for every worker, the attempt is not counted, nothing was sent."""
    faults = Faults(rate_limit_first=1, rate_limit_reset_seconds=None)
    async with sandbox_with(tmp_path, channel, faults) as box:
        adapter = adapter_for(box, channel)
        try:
            started = dt.datetime.now(dt.UTC)
            attempt, update = await attempt_once(adapter, delivery(Channel(channel)))
        finally:
            await adapter.aclose()
        held = received(box, channel)
    assert update.attempt_outcome is AttemptOutcome.RATE_LIMITED and attempt.tries == 1
    assert update.status is DeliveryStatus.QUEUED and held == 0
    assert update.pause_until is not None
    paused = (update.pause_until - started).total_seconds()
    assert 59 <= paused <= 61
