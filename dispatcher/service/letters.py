"""For the post and the phone: the call script beside each official's number, and the
supporter's letter as a printable page for the post."""

from __future__ import annotations

import asyncio

from dispatcher.campaigns import Campaign, Target
from dispatcher.i18n import _
from dispatcher.logs import get_logger
from dispatcher.merge_fields import merge, supporter_values, target_values
from dispatcher.models import Channel, ClaimedDelivery, utcnow
from dispatcher.render.fax import render_letter_pdf
from dispatcher.render.fonts import FaxFontError
from dispatcher.service.appeal_parts import Letter, Supporter, letter_to
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.service.links import check_link
from dispatcher.store.receipts import ReceiptAppeal

log = get_logger(__name__)


def call_scripts(
    campaign: Campaign, language: str, supporter: tuple[str, str | None] | None
) -> dict[str, str]:
    """Target id → what a supporter could say on the phone, for each official with a
    number, in ``language`` (the campaign's own language if it has no script in it); the
    supporter's name where the script asks for it (``[your name]`` until it is known)."""
    letter = campaign.letter.get(language) or campaign.letter[campaign.default_language]
    script = letter.call_script
    if script is None:
        return {}
    if supporter is None:
        values = {
            "supporter.first_name": _("[your name]"),
            "supporter.country": _("[your country]"),
        }
    else:
        values = supporter_values(*supporter)
    return {
        t.id: merge(script, {**values, **target_values(t.name_in(language), t.title_in(language))})
        for t in campaign.targets
        if t.phone
    }


def postal_targets(campaign: Campaign) -> list[Target]:
    """The officials a letter can be posted to."""
    return [t for t in campaign.targets if t.postal]


async def printable_letter(
    service: Service, appeal_id: str, token: str, target_id: str
) -> tuple[str, bytes]:
    """(file name, PDF) of the supporter's letter to one official, for the post: needs the
    appeal's status link (ServiceError, not found, otherwise, and for an official with no
    postal address or an appeal whose data was deleted)."""
    check_link(service, "status", appeal_id, token)
    appeal = await service.store.receipt_appeal(appeal_id)
    campaign = service.catalog.get(appeal.campaign_id) if appeal else None
    target = campaign.target(target_id) if campaign else None
    if appeal is None or target is None or not target.postal:
        raise ServiceError(
            ErrorKind.NOT_FOUND, f"no letter to {target_id!r} for this appeal", "target"
        )
    delivery = _as_letter(appeal, target)
    try:
        pdf = await asyncio.to_thread(render_letter_pdf, delivery, target.postal, utcnow().date())
    except FaxFontError as exc:
        raise cannot_draw("a printable letter", exc) from exc
    return f"letter-to-{target.id}.pdf", pdf


def cannot_draw(what: str, exc: FaxFontError) -> ServiceError:
    """No font to draw with: the operators read what to install in the log; whoever asked
    is told only that it cannot be done now."""
    log.error("no font to draw with", document=what, problem=str(exc))
    return ServiceError(
        ErrorKind.UNAVAILABLE, f"{what} cannot be drawn on this server at the moment"
    )


def _as_letter(appeal: ReceiptAppeal, target: Target) -> ClaimedDelivery:
    """The appeal as a letter to ``target``: on the paper of the official's country (their
    fax or phone number says which)."""
    supporter = Supporter(appeal.supporter_name, "", appeal.supporter_country)
    letter = Letter(appeal.language, appeal.subject, appeal.body, own=False)
    address = target.fax or target.phone or ""
    return letter_to(target, supporter, letter, channel=Channel.EMAIL, address=address)
