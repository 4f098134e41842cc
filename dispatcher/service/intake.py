"""Intake: the one way an appeal comes in, whoever hands it in (the campaign page, the
embedded form, the JSON API, the CLI): :func:`submit_appeal`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace

from dispatcher.campaigns import Campaign
from dispatcher.models import SENT_CHANNELS, AppealReceipt, Channel, XRoute
from dispatcher.service.appeal_request import AppealRequest as AppealRequest
from dispatcher.service.appeal_request import Rejected as Rejected
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.service.limits import IntakeLimits, over_limit
from dispatcher.service.links import address_alias, new_appeal_id
from dispatcher.service.post_rules import MAX_POST_CHARS, post_weights
from dispatcher.service.review import needs_review
from dispatcher.service.text_rules import clean_text
from dispatcher.service.validation import PLACEHOLDER, ValidAppeal, check_appeal
from dispatcher.service.x_accounts import (
    Connection,
    checked_connection,
    hand_off_link,
    hand_off_text,
    x_app_capped,
)

# An operator's command counts no hits.
NO_LIMITS = IntakeLimits()


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
    # What the store did (stored, or counted already: a repeat), for an operator's tool
    # (``dispatcher send``) only; None for a page or the API, which never tell.
    receipt: AppealReceipt | None = None


async def submit_appeal(
    service: Service,
    request: AppealRequest,
    *,
    limits: IntakeLimits = NO_LIMITS,
    now: dt.datetime | None = None,
) -> Accepted | Rejected:
    """Take an appeal, in one order for every caller: the intake ``limits`` (before any
    other check), every rule (each problem at once), the review decision, then supporter,
    appeal and deliveries stored in one transaction.

    Rejected, with nothing stored, lists every problem, or the limit reached. A repeat
    (same campaign, supporter email, target and channel) creates nothing; the answer says
    so only to an operator's tool (``Accepted.receipt``).
    """
    refused = await _limited(service, limits, request)
    if refused is not None:
        return refused
    on = [channel for channel in SENT_CHANNELS if service.channel_on(channel)]
    checked = check_appeal(service.catalog, request, channels_on=on, now=now)
    if isinstance(checked, Rejected):
        return checked
    try:
        connection = await checked_connection(service, request.x_connection)
    except ServiceError as exc:
        if not request.via.page:
            return Rejected((exc,))
        connection = None  # left half-way on the page: its post is handed off, as it said
    held = needs_review(checked.campaign, checked.supporter, checked.written, checked.tweet)
    valid = replace(checked, appeal=replace(checked.appeal, held=held))
    route = await _x_route_of(service, valid, connection)
    receipt = await _store(service, valid, now, connection, route)
    tweet = valid.appeal.tweet or ""
    return Accepted(
        appeal_id=receipt.appeal_id,
        requested=tuple((d.target_id, d.channel) for d in valid.deliveries),
        confirm_by_email=valid.appeal.reply_to
        and any(d.channel is Channel.EMAIL for d in valid.deliveries),
        receipt=receipt if request.via.operator else None,
        hand_offs=tuple(
            (
                d.target_id,
                hand_off_link(
                    service, receipt.appeal_id, d.target_id, hand_off_text(d.address, tweet)
                ),
            )
            for d in valid.deliveries
            if d.channel is Channel.TWITTER and route[0] is XRoute.HAND_OFF
        ),
    )


async def _limited(
    service: Service, limits: IntakeLimits, request: AppealRequest
) -> Rejected | None:
    """One hit counted per appeal handed in, for the client's address (none for an
    operator's command) and for the email address; a refusal once either is over."""
    counted = (
        ("ip", request.client, limits.per_address, "address"),
        ("email", request.supporter_email.strip().lower(), limits.per_email, "email address"),
    )
    for scope, key, limit, whose in counted:
        if key is None:
            continue
        wait = await over_limit(
            service, scope, key, limit=limit.hits, window_seconds=limit.window_seconds
        )
        if wait is not None:
            message = f"too many appeals from this {whose}; try again in {wait} s"
            problem = ServiceError(
                ErrorKind.INVALID, message, None, "rate_limited", {"seconds": wait}
            )
            return Rejected((problem,), retry_after=wait)
    return None


# Why an appeal's X posts are handed off at once (the delivery log shows it).
HAND_OFF_NOTES = {
    "campaign": "the campaign asks supporters to post on X themselves",
    "not_connected": "the supporter did not connect an X account",
    "no_app": "no X app for supporters' own accounts is configured (DISPATCHER_TWITTER__CLIENT_ID)",
    "no_keys": "no X organisation account is configured (DISPATCHER_TWITTER__CONSUMER_KEY "
    "and the other X keys)",
    "app_cap": "X's 24-hour cap for the app is reached",
}


def x_route(service: Service, campaign: Campaign, connected: bool) -> tuple[XRoute, str]:
    """How this campaign's X deliveries start here, before X's app cap is looked at
    (``connected``: the supporter connected their X account on the page), and why a
    hand-off is one."""
    if campaign.x_mode == "hand_off":
        return XRoute.HAND_OFF, HAND_OFF_NOTES["campaign"]
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
    """:func:`x_route`, then X's app cap (read from the store only for posts that would
    be queued: a hand-off for another reason says that reason)."""
    campaign = valid.campaign
    if not any(d.channel is Channel.TWITTER for d in valid.deliveries):
        return XRoute.QUEUE, ""
    route = x_route(service, campaign, connected=connection is not None)
    if route[0] is XRoute.QUEUE and await x_app_capped(service) is not None:
        return XRoute.HAND_OFF, HAND_OFF_NOTES["app_cap"]
    return route


async def _store(
    service: Service,
    valid: ValidAppeal,
    now: dt.datetime | None,
    connection: Connection | None,
    x: tuple[XRoute, str],
) -> AppealReceipt:
    """Store the appeal; ``x``: how its X posts start."""
    route, note = x
    # Posts from the supporter's own account are that account's: told apart by it.
    own_account = valid.campaign.x_mode == "own_account"
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
    return await service.for_intake.create_appeal(
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
