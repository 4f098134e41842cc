"""Intake: a supporter's appeal stored with all its deliveries in one step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace

from dispatcher.campaigns import Campaign
from dispatcher.models import AppealReceipt, Channel
from dispatcher.render.tweet import compose_tweet, weighted_length
from dispatcher.service.context import Service
from dispatcher.service.links import address_alias, new_appeal_id
from dispatcher.service.validation import (
    PLACEHOLDER,
    AppealRequest,
    ValidAppeal,
    validate_appeal,
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What whoever submitted an appeal is told: the same for a first submission, a repeat
    of an address that took part already, and an address whose owner said "this wasn't
    me". Only what they asked for, and an id of their own; the rest reaches the
    supporter by email, at the address."""

    appeal_id: str
    requested: tuple[tuple[str, Channel], ...]
    # The supporter asked that officials may reply to them: they must follow the link
    # we sent to the address first (their emails wait until then).
    confirm_by_email: bool


async def submit_appeal(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> AppealReceipt:
    """Validate, then store supporter, appeal and deliveries in one transaction.

    A repeat (same campaign, supporter email, target and channel) creates nothing and
    ``already_counted`` says so, for an operator's tool (``dispatcher send``); a page or
    the API says no more than :func:`accept_appeal` does. Raises ServiceError, with
    nothing stored, for anything that is not accepted.
    """
    valid = validate_appeal(service.catalog, request, now=now)
    return await _store(service, valid, now)


async def accept_appeal(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> Accepted:
    """:func:`submit_appeal`, answered as the public may see it (see :class:`Accepted`)."""
    valid = validate_appeal(service.catalog, request, now=now)
    receipt = await _store(service, valid, now)
    return Accepted(
        appeal_id=receipt.appeal_id,
        requested=tuple((d.target_id, d.channel) for d in valid.deliveries),
        confirm_by_email=valid.appeal.reply_to
        and any(d.channel is Channel.EMAIL for d in valid.deliveries),
    )


async def _store(service: Service, valid: ValidAppeal, now: dt.datetime | None) -> AppealReceipt:
    appeal = replace(valid.appeal, email_alias=address_alias(service, valid.appeal.supporter_email))
    appeal_id = new_appeal_id(service, appeal.campaign_id, appeal.idempotency_key)
    return await service.store.create_appeal(appeal, valid.deliveries, appeal_id=appeal_id, now=now)


def tweet_lengths(
    campaign: Campaign,
    text: str | None,
    supporter_name: str,
    targets: Collection[str] | None = None,
    language: str | None = None,
) -> dict[str, int]:
    """Weighted length of the post each X target would get (handles + text + signature),
    for the ``targets`` chosen (all of them when None), with the text as intake cleans it
    (no text: the sample post for a letter in ``language``)."""
    tweet = campaign.tweet_in(language or campaign.default_language)
    if text is not None and text.strip():
        tweet = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    name = supporter_name.strip() or PLACEHOLDER
    return {
        target.id: weighted_length(compose_tweet(" ".join(target.twitter), tweet, name))
        for target in campaign.targets
        if target.twitter and (targets is None or target.id in targets)
    }
