"""Intake: a supporter's appeal stored with all its deliveries in one step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace

from dispatcher.campaigns import Campaign
from dispatcher.models import AppealReceipt, Channel
from dispatcher.render.tweet import compose_tweet, weighted_length
from dispatcher.service.context import Service
from dispatcher.service.errors import ServiceError, invalid
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
    return await _store(service, _validated(service, request, now), now)


async def accept_appeal(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> Accepted:
    """:func:`submit_appeal`, answered as the public may see it (see :class:`Accepted`)."""
    valid = _validated(service, request, now)
    receipt = await _store(service, valid, now)
    return Accepted(
        appeal_id=receipt.appeal_id,
        requested=tuple((d.target_id, d.channel) for d in valid.deliveries),
        confirm_by_email=valid.appeal.reply_to
        and any(d.channel is Channel.EMAIL for d in valid.deliveries),
    )


# What switches each channel on, for the sentence refusing one that is off.
_SWITCHED_ON_BY = {
    Channel.EMAIL: "DISPATCHER_EMAIL__HOST",
    Channel.FAX: "DISPATCHER_FAX__PROVIDER and its settings",
    Channel.TWITTER: "DISPATCHER_TWITTER__CONSUMER_KEY and the other X keys",
}


def channel_off_problem(service: Service, request: AppealRequest) -> ServiceError | None:
    """A channel the request names that is off here (live mode, no provider settings)."""
    named = [*request.channels, *(channel for _, channel in request.pairs)]
    for name in dict.fromkeys(n.strip().lower() for n in named):
        if name in Channel._value2member_map_ and not service.channel_on(Channel(name)):
            return invalid(
                "channels",
                f"{name} is off here: no {name} provider is configured; set "
                f"{_SWITCHED_ON_BY[Channel(name)]} (see config/example.env), or "
                f"DISPATCHER_SANDBOX__CHANNELS={name} to rehearse it",
                "channel_off",
            )
    return None


def _validated(service: Service, request: AppealRequest, now: dt.datetime | None) -> ValidAppeal:
    """The appeal as validation takes it, less the channels that are off: one named is
    refused; when none is named, the targets' other channels are used."""
    problem = channel_off_problem(service, request)
    if problem is not None:
        raise problem
    valid = validate_appeal(service.catalog, request, now=now)
    on = tuple(d for d in valid.deliveries if service.channel_on(d.channel))
    if not on:
        raise invalid("channels", "none of the chosen channels is on here", "no_choice")
    return replace(valid, deliveries=on)


async def _store(service: Service, valid: ValidAppeal, now: dt.datetime | None) -> AppealReceipt:
    appeal = replace(valid.appeal, email_alias=address_alias(service, valid.appeal.supporter_email))
    appeal_id = new_appeal_id(service, appeal.campaign_id, appeal.idempotency_key)
    return await service.store.create_appeal(
        appeal, valid.deliveries, appeal_id=appeal_id, providers=service.providers, now=now
    )


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
