"""The fax PDF a gateway fetches by a signed link (Telnyx takes a ``media_url``).

The link is signed for one delivery and expires within the hour (see
:class:`~dispatcher.channels.fax.MediaLinks`); it answers only while that fax is on its
way, rendered again from the delivery as the worker would, so no letter is stored
anywhere else and a link that leaks after the fax went out shows nothing.
"""

from __future__ import annotations

import asyncio

from dispatcher.channels.fax import MediaLinks, fax_link_key
from dispatcher.models import Channel, ClaimedDelivery, DeliveryStatus
from dispatcher.render.fax import render_fax_pdf
from dispatcher.render.fonts import FaxFontError
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.service.letters import cannot_draw
from dispatcher.settings import Settings

# A gateway may fetch the PDF before the worker has recorded the gateway's answer: the
# link waits this long for the delivery to be recorded as awaiting confirmation.
RECORD_WAIT_SECONDS = 15.0
_RECORD_POLL_SECONDS = 0.05


def not_available() -> ServiceError:
    """What an unsigned, tampered, expired or spent link gets: nothing says which."""
    return ServiceError(ErrorKind.NOT_FOUND, "no such fax document, or the link is not valid")


async def fax_document(service: Service, settings: Settings, token: str) -> bytes:
    """The PDF of the delivery ``token`` was signed for. ServiceError (not found) for a
    link that is not ours, was changed or expired, or whose fax is no longer on its way."""
    links = MediaLinks(fax_link_key(settings), settings.public_url)
    delivery_id = links.delivery_id(token)
    if delivery_id is None:
        raise not_available()
    delivery = await fax_on_its_way(service, delivery_id)
    if delivery is None:
        raise not_available()
    header = settings.fax.header_text
    try:
        return await asyncio.to_thread(render_fax_pdf, delivery, header_text=header)
    except FaxFontError as exc:
        raise cannot_draw("the fax document", exc) from exc


async def fax_on_its_way(service: Service, delivery_id: int) -> ClaimedDelivery | None:
    """The fax awaiting confirmation as ``delivery_id``; while it is still being sent, its
    worker is about to record the gateway's answer: wait for that (a few seconds at most).
    None for anything else."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RECORD_WAIT_SECONDS
    while True:
        entry = await service.store.get_delivery(delivery_id)
        if entry is None or entry.channel is not Channel.FAX:
            return None
        if entry.status is DeliveryStatus.AWAITING_CONFIRMATION and entry.provider_ref:
            delivery = await service.store.awaiting_fax(entry.provider_ref)
            return delivery if delivery is not None and delivery.id == delivery_id else None
        if entry.status is not DeliveryStatus.SENDING or loop.time() > give_up:
            return None
        # Being sent: the gateway's answer (its fax id) is about to be recorded.
        await asyncio.sleep(_RECORD_POLL_SECONDS)
