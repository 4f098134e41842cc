"""The parts of an appeal as the intake's checks pass them along, and a letter to one
official as the worker would render it (to count a fax's pages, to print it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dispatcher.campaigns import Target
from dispatcher.merge_fields import merge, target_values
from dispatcher.models import Channel, ClaimedDelivery, DeliveryStatus


@dataclass(frozen=True, slots=True)
class Supporter:
    name: str
    email: str
    country: str | None


@dataclass(frozen=True, slots=True)
class Letter:
    language: str
    subject: str
    body: str
    own: bool
    own_subject: bool = False


def letter_to(
    target: Target, supporter: Supporter, letter: Letter, *, channel: Channel, address: str
) -> ClaimedDelivery:
    """``letter`` from ``supporter`` to ``target``, with the official's merge fields filled
    in, as a delivery on ``channel`` to ``address`` (never stored: the largest id the
    store can give)."""
    fields = target_values(target.name_in(letter.language), target.title_in(letter.language))
    return ClaimedDelivery(
        id=2**31 - 1,
        appeal_id="",
        campaign_id="",
        target_id=target.id,
        target_name=target.name,
        salutation=target.salutation_in(letter.language),
        channel=channel,
        address=address,
        status=DeliveryStatus.SENDING,
        attempts=0,
        provider_ref=None,
        expires_at=dt.datetime.max.replace(tzinfo=dt.UTC),
        supporter_name=supporter.name,
        supporter_email=supporter.email,
        supporter_country=supporter.country,
        language=letter.language,
        subject=merge(letter.subject, fields),
        body=merge(letter.body, fields),
        tweet=None,
        earlier_outcome_unknown=False,
    )
