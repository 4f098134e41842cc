"""What a supporter reads about each delivery, after real failures from the sandbox: one
plain sentence on what happened, and whether and when it will be tried again. Operators
keep the provider's own words."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from dispatcher.models import DeliveryStatus
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.service.links import link_token
from dispatcher.service.status import appeal_status
from dispatcher.store import Store
from tests.conftest import submitted
from tests.integration.conftest import MakeWorker, appeal
from tests.waiting import eventually

LATER = r"We will try again after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\."


async def test_each_failure_is_told_in_plain_words_with_what_happens_next(
    store: Store, service: Service, make_worker: MakeWorker, tmp_path: Path
) -> None:
    async with Sandbox(
        tmp_path / "box",
        email_faults=Faults(refuse=frozenset({"english@mail.gov.cn"}), fail_first=1),
        fax_faults=Faults(refuse=frozenset({"+861062381025"}), busy_first=1),
        x_faults=Faults(rate_limit_first=1, rate_limit_reset_seconds=3600),
        fax_transmit_seconds=0.05,
    ) as sandbox:
        receipt = await submitted(service, appeal())
        # Retries an hour away: each delivery stays where its first attempt left it.
        worker = make_worker(sandbox, base_seconds=3600, max_seconds=3600, fast_tries=1)
        worker.pacing = None
        stop = asyncio.Event()
        run = asyncio.create_task(worker.run(stop=stop))

        async def each_tried_once() -> bool:
            return all(
                e.status in (DeliveryStatus.QUEUED, DeliveryStatus.FAILED) and e.attempts
                for e in await store.list_deliveries()
            )

        await eventually(each_tried_once, what="a first attempt at each delivery recorded")
        stop.set()
        await run
    token = link_token(service, "status", receipt.appeal_id)
    status = await appeal_status(service, receipt.appeal_id, token)
    said = {(d.target, d.channel.value): d.reason or "" for d in status.deliveries}
    assert said[("xi-jinping", "email")] == (
        "The official's mail server refused the email. We will not try again."
    )
    assert said[("xi-jinping", "fax")] == (
        "The fax number is out of service. We will not try again."
    )
    assert re.fullmatch(
        "The official's mail server asked us to try again later. " + LATER,
        said[("cui-tiankai", "email")],
    )
    assert re.fullmatch("The fax line was busy. " + LATER, said[("cui-tiankai", "fax")])
    assert re.fullmatch(
        "X limited how often we can post. " + LATER, said[("cui-tiankai", "twitter")]
    )
    # The operators' log keeps what the providers said.
    raw = {e.target_id + "/" + e.channel.value: e.last_error for e in await store.list_deliveries()}
    assert raw["xi-jinping/fax"] is not None
    assert (
        raw["xi-jinping/fax"].message == "fax failed: Phone number not operational (fatalErrorType)"
    )
