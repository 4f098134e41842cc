"""The live log (behind the operator's stream and `dispatcher log --follow`)."""

from __future__ import annotations

import asyncio
import datetime as dt

from dispatcher.models import DeliveryStatus, utcnow
from dispatcher.service import Service
from dispatcher.service.log import LogFilter, follow_deliveries
from tests.integration.test_store import EMAIL_T1, FAX_T1, appeal


async def test_a_change_committed_after_a_later_stamped_one_still_appears(
    service: Service,
) -> None:
    """A transaction stamps its changes before it commits, so a change can become visible
    after one stamped later; the live log must not skip it."""
    store = service.store
    start = utcnow()
    await store.create_appeal(appeal(), [EMAIL_T1, FAX_T1], now=start)
    [email, fax] = await store.list_deliveries()
    stop = asyncio.Event()
    changes = follow_deliveries(service, LogFilter.parse(), since=start, stop=stop, interval=0.05)
    first = await anext(changes)
    assert {e.id for e in first} == {email.id, fax.id}
    later, earlier = start + dt.timedelta(seconds=2), start + dt.timedelta(seconds=1)
    await store.change_status(
        email.id,
        allowed_from=frozenset({DeliveryStatus.QUEUED}),
        to=DeliveryStatus.CANCELLED,
        now=later,
    )
    assert [e.id for e in await anext(changes)] == [email.id]
    # Stamped before the change just shown, committed after it.
    await store.change_status(
        fax.id,
        allowed_from=frozenset({DeliveryStatus.QUEUED}),
        to=DeliveryStatus.CANCELLED,
        now=earlier,
    )
    shown = await anext(changes)
    stop.set()
    await changes.aclose()
    assert [(e.id, e.status) for e in shown] == [(fax.id, DeliveryStatus.CANCELLED)]
