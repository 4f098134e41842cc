"""Intake: a supporter's appeal stored with all its deliveries in one step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace

from dispatcher.campaigns import Campaign
from dispatcher.models import AppealReceipt, Channel, XRoute
from dispatcher.service.context import Service
from dispatcher.service.errors import ServiceError, invalid
from dispatcher.service.links import address_alias, new_appeal_id
from dispatcher.service.post_rules import MAX_POST_CHARS, post_weights
from dispatcher.service.text_rules import clean_text
from dispatcher.service.validation import (
    PLACEHOLDER,
    AppealRequest,
    ValidAppeal,
    validate_appeal,
)
from dispatcher.service.x_accounts import (
    Connection,
    checked_connection,
    hand_off_link,
    hand_off_text,
    x_app_capped,
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
    # X posts handed to the supporter to send themselves: (target id, our link to the
    # prepared post). The same whether the appeal was stored or was a repeat.
    hand_offs: tuple[tuple[str, str], ...] = ()


async def submit_appeal(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> AppealReceipt:
    """Validate, then store supporter, appeal and deliveries in one transaction.

    A repeat (same campaign, supporter email, target and channel) creates nothing and
    ``already_counted`` says so, for an operator's tool (``dispatcher send``); a page or
    the API says no more than :func:`accept_appeal` does. Raises ServiceError, with
    nothing stored, for anything that is not accepted.
    """
    valid = _validated(service, request, now)
    connection = await checked_connection(service, request.x_connection)
    return await _store(service, valid, now, connection)


async def accept_appeal(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> Accepted:
    """:func:`submit_appeal`, answered as the public may see it (see :class:`Accepted`)."""
    valid = _validated(service, request, now)
    connection = await checked_connection(service, request.x_connection)
    route = await _x_route_of(service, valid, connection)
    receipt = await _store(service, valid, now, connection, route)
    posts = [d for d in valid.deliveries if d.channel is Channel.TWITTER]
    tweet = valid.appeal.tweet or ""
    return Accepted(
        appeal_id=receipt.appeal_id,
        requested=tuple((d.target_id, d.channel) for d in valid.deliveries),
        confirm_by_email=valid.appeal.reply_to
        and any(d.channel is Channel.EMAIL for d in valid.deliveries),
        hand_offs=tuple(
            (
                d.target_id,
                hand_off_link(
                    service, receipt.appeal_id, d.target_id, hand_off_text(d.address, tweet)
                ),
            )
            for d in posts
            if route[0] is XRoute.HAND_OFF
        ),
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


# Why an appeal's X posts are handed off at once (the delivery log shows it).
HAND_OFF_NOTES = {
    "campaign": "the campaign asks supporters to post on X themselves",
    "not_connected": "the supporter did not connect an X account",
    "no_app": "no X app for supporters' own accounts is configured (DISPATCHER_TWITTER__CLIENT_ID)",
    "no_keys": "no X organisation account is configured (DISPATCHER_TWITTER__CONSUMER_KEY "
    "and the other X keys)",
    "app_cap": "X's 24-hour cap for the app is reached",
}


def x_route(
    service: Service, campaign: Campaign, connected: bool, capped: bool = False
) -> tuple[XRoute, str]:
    """How this campaign's X deliveries start here (``connected``: the supporter connected
    their X account on the page; ``capped``: X's app cap is reached), and why a hand-off
    is one."""
    if campaign.x_mode == "hand_off":
        return XRoute.HAND_OFF, HAND_OFF_NOTES["campaign"]
    if capped:
        return XRoute.HAND_OFF, HAND_OFF_NOTES["app_cap"]
    if campaign.x_mode == "organisation":
        if service.x_organisation:
            return XRoute.QUEUE, ""
        return XRoute.HAND_OFF, HAND_OFF_NOTES["no_keys"]
    if service.x_oauth is None:
        return XRoute.HAND_OFF, HAND_OFF_NOTES["no_app"]
    if connected:
        return XRoute.QUEUE, ""
    return XRoute.HAND_OFF, HAND_OFF_NOTES["not_connected"]


async def _x_route_of(
    service: Service, valid: ValidAppeal, connection: Connection | None
) -> tuple[XRoute, str]:
    campaign = service.catalog.get(valid.appeal.campaign_id)
    assert campaign is not None  # validation found it
    if not any(d.channel is Channel.TWITTER for d in valid.deliveries):
        return XRoute.QUEUE, ""
    capped = await x_app_capped(service) is not None
    return x_route(service, campaign, connected=connection is not None, capped=capped)


async def _store(
    service: Service,
    valid: ValidAppeal,
    now: dt.datetime | None,
    connection: Connection | None = None,
    x: tuple[XRoute, str] | None = None,
) -> AppealReceipt:
    """Store the appeal; ``x``: how its X posts start, when the caller decided already."""
    route, note = x if x is not None else await _x_route_of(service, valid, connection)
    # Posts from the supporter's own account are that account's: told apart by it.
    campaign = service.catalog.get(valid.appeal.campaign_id)
    own_account = campaign is not None and campaign.x_mode == "own_account"
    own = connection if route is XRoute.QUEUE and own_account else None
    appeal = replace(
        valid.appeal,
        email_alias=address_alias(service, valid.appeal.supporter_email),
        x_route=route,
        x_note=note,
        x_connection=own.hash if own is not None else None,
        x_account=own.identity if own is not None else (),
    )
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
    language = language or campaign.default_language
    tweet = campaign.tweet_in(language)
    if text is not None and text.strip():
        try:
            tweet = clean_text("tweet", text, limit=MAX_POST_CHARS)
        except ServiceError:  # refused on Send with its own words; weigh it as typed
            tweet = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    name = supporter_name.strip() or PLACEHOLDER
    chosen = [t for t in campaign.targets if targets is None or t.id in targets]
    return post_weights(campaign, tweet, (name, None), chosen, language)
