"""Providers' status callbacks: settling a delivery exactly as polling would."""

from __future__ import annotations

from typing import Any

from dispatcher.channels.fax import fax_verdict
from dispatcher.models import utcnow
from dispatcher.outcomes import confirmation_update
from dispatcher.service.context import Service


async def apply_fax_callback(service: Service, fax: dict[str, Any]) -> bool:
    """Settle the delivery a verified fax status callback is about.

    Unknown fax ids, faxes not awaiting confirmation (settled, re-sent) and non-final
    statuses change nothing. Returns whether a delivery changed.
    """
    fax_id = fax.get("id")
    verdict = fax_verdict(fax, note=", confirmed by callback")
    if fax_id is None or verdict is None:
        return False
    delivery = await service.store.awaiting_fax(str(fax_id))
    if delivery is None:
        return False
    update = confirmation_update(
        service.policy, delivery, verdict, now=utcnow(), poll_seconds=service.poll_seconds
    )
    return await service.store.settle_awaiting(update, str(fax_id))
