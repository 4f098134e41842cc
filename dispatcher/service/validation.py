"""Checking a supporter's appeal before anything is stored: :func:`check_appeal` runs every
rule, in one order whoever hands the appeal in, and answers every problem (the first for
each field) or the appeal ready to store.

The order: the campaign (unknown, closed: then nothing else is checked), a channel named
that is off here, a page's empty choice, the supporter, the officials × channels (the
campaign's choice: :meth:`Campaign.choose_pairs`), the letter, what the fax can carry,
the post on X, the idempotency key, the page language and the sources, and last whether
any chosen channel is on. The API and the CLI say the first problem; a page, all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

from dispatcher.campaigns import Campaign, CampaignCatalog, ChoiceError, Pair, Target
from dispatcher.merge_fields import merge, supporter_values, target_values
from dispatcher.models import SENT_CHANNELS, Channel, NewAppeal, NewDelivery
from dispatcher.service.appeal_parts import Letter, Supporter
from dispatcher.service.appeal_request import AppealRequest as AppealRequest
from dispatcher.service.appeal_request import Rejected
from dispatcher.service.catalog import open_campaign
from dispatcher.service.errors import ServiceError, invalid
from dispatcher.service.fax_rules import check_fax_font, check_fax_pages
from dispatcher.service.letter_rules import check_letter, merged
from dispatcher.service.post_rules import check_post_content as check_post_content
from dispatcher.service.post_rules import check_tweet
from dispatcher.service.sources import check_page_language, check_sources

# Re-exported: the reported-actions form checks a supporter by the same rules.
from dispatcher.service.supporter_rules import check_country, check_supporter
from dispatcher.service.supporter_rules import check_email as check_email
from dispatcher.service.text_rules import check_name as check_name
from dispatcher.service.text_rules import clean_line as clean_line
from dispatcher.service.text_rules import clean_text as clean_text

MAX_KEY_CHARS = 128
# The name a post is weighed with before the supporter has typed one.
PLACEHOLDER = "A supporter"
T = TypeVar("T")

# What switches each channel on, for the sentence refusing one that is off.
_SWITCHED_ON_BY = {
    Channel.EMAIL: "DISPATCHER_EMAIL__HOST",
    Channel.FAX: "DISPATCHER_FAX__PROVIDER and its settings",
    Channel.TWITTER: "DISPATCHER_TWITTER__CONSUMER_KEY and the other X keys",
}


@dataclass(frozen=True, slots=True)
class ValidAppeal:
    """An appeal every rule accepted: what is stored, and what the review decision weighs
    (the supporter, the letter and the post as they wrote or chose them)."""

    campaign: Campaign
    appeal: NewAppeal
    deliveries: tuple[NewDelivery, ...]
    supporter: Supporter
    written: Letter
    tweet: str | None


class _Problems:
    """What the checks refused, the first problem for each field."""

    def __init__(self) -> None:
        self.found: dict[str | None, ServiceError] = {}

    def add(self, problem: ServiceError) -> None:
        self.found.setdefault(problem.field, problem)

    def attempt(self, check: Callable[[], T]) -> T | None:
        try:
            return check()
        except ServiceError as exc:
            self.add(exc)
            return None

    def rejected(self) -> Rejected:
        return Rejected(tuple(self.found.values()))


def check_appeal(
    catalog: CampaignCatalog,
    request: AppealRequest,
    *,
    channels_on: Collection[Channel] = SENT_CHANNELS,
    now: dt.datetime | None = None,
) -> ValidAppeal | Rejected:
    """Every rule, before anything is stored (``channels_on``: the channels this
    deployment sends on). A check that needs an earlier answer runs once that one passed:
    the fax needs the supporter and the letter, anything on the choice needs the choice."""
    problems = _Problems()
    campaign = problems.attempt(lambda: open_campaign(catalog, request.campaign_id, now=now))
    if campaign is None:
        return problems.rejected()
    problems.attempt(lambda: check_channels_on(request, channels_on))
    if request.via.page and not request.pairs:  # on a page, nothing ticked is no choice
        problems.add(
            invalid(
                "channels",
                "nothing is chosen; tick at least one official and a way to reach them",
                "no_choice",
            )
        )
    supporter = _supporter(problems, request)
    pairs = problems.attempt(lambda: check_choices(campaign, request)) or []
    written = problems.attempt(lambda: check_letter(campaign, request))
    tweet = _channel_rules(problems, campaign, request, (supporter, written), pairs)
    key = problems.attempt(lambda: _idempotency_key(request))
    page_language = problems.attempt(lambda: check_page_language(request.page_language))
    sources = problems.attempt(lambda: check_sources(request.sources, strict=not request.via.page))
    on = [(target, channel) for target, channel in pairs if channel in channels_on]
    if pairs and not on:
        problems.add(invalid("channels", "none of the chosen channels is on here", "no_choice"))
    if problems.found:
        return problems.rejected()
    assert supporter is not None and written is not None and sources is not None
    letter = merged(written, supporter)
    appeal = NewAppeal(
        campaign_id=campaign.id,
        supporter_name=supporter.name,
        supporter_email=supporter.email,
        supporter_country=supporter.country,
        language=letter.language,
        subject=letter.subject,
        body=letter.body,
        own_message=letter.own,
        tweet=None if tweet is None else merge(tweet, supporter_values(*_who(supporter))),
        expires_at=campaign.closes_at,
        idempotency_key=None if key is None else _scoped_key(supporter.email, key),
        receipt=request.receipt,
        contact_ok=request.contact_ok,
        reply_to=campaign.reply_to_supporter == "always"
        or (campaign.reply_to_supporter == "ask" and request.reply_to),
        page_language=page_language,
        sources=sources,
    )
    deliveries = tuple(_new_delivery(target, channel, letter.language) for target, channel in on)
    return ValidAppeal(campaign, appeal, deliveries, supporter, written, tweet)


def _supporter(problems: _Problems, request: AppealRequest) -> Supporter | None:
    supporter = problems.attempt(lambda: check_supporter(request))
    if supporter is None:  # each of its fields on its own, to name every one that is wrong
        problems.attempt(lambda: check_email("supporter.email", request.supporter_email))
        problems.attempt(lambda: check_country(request))
    return supporter


def _who(supporter: Supporter) -> tuple[str, str | None]:
    return supporter.name, supporter.country


def _channel_rules(
    problems: _Problems,
    campaign: Campaign,
    request: AppealRequest,
    parts: tuple[Supporter | None, Letter | None],
    pairs: list[Pair],
) -> str | None:
    """What the chosen channels need of the appeal: a fax its font can draw and within the
    campaign's pages, a post within X's length (weighed as the page's live counter weighs
    it while no name is valid). Returns the post's text, None without X."""
    supporter, written = parts
    used = {channel for _, channel in pairs}
    if Channel.FAX in used and supporter is not None and written is not None:
        letter = merged(written, supporter)
        problems.attempt(lambda: check_fax_font(supporter, letter, pairs))
        problems.attempt(lambda: check_fax_pages(campaign, supporter, letter, pairs))
    if Channel.TWITTER not in used:
        return None
    if supporter is not None:
        who = _who(supporter)
    else:
        who = (request.supporter_name.strip() or PLACEHOLDER, None)
    return problems.attempt(
        lambda: check_tweet(campaign, request.language, request.tweet, who, pairs)
    )


def check_channels_on(request: AppealRequest, on: Collection[Channel]) -> None:
    """A channel the request names that is off here (live mode, no provider settings)."""
    named = [*request.channels, *(channel for _, channel in request.pairs)]
    for name in dict.fromkeys(n.strip().lower() for n in named):
        if name in Channel._value2member_map_ and Channel(name) not in on:
            raise invalid(
                "channels",
                f"{name} is off here: no {name} provider is configured; set "
                f"{_SWITCHED_ON_BY[Channel(name)]} (see config/example.env), or "
                f"DISPATCHER_SANDBOX__CHANNELS={name} to rehearse it",
                "channel_off",
            )


def check_choices(campaign: Campaign, request: AppealRequest) -> list[Pair]:
    """The (official, channel) pairs to deliver, as the campaign fans the choice out."""
    try:
        return campaign.choose_pairs(request.targets, request.channels, request.pairs)
    except ChoiceError as exc:
        raise invalid(exc.field, exc.message, exc.reason) from None


def _idempotency_key(request: AppealRequest) -> str | None:
    return clean_line(
        "idempotency_key", request.idempotency_key or "", limit=MAX_KEY_CHARS, required=False
    )


def _scoped_key(email: str, key: str) -> str:
    """The idempotency key as stored: bound to the supporter's address, so that the same
    key from someone else is a different request (and never finds this one's appeal)."""
    return hashlib.sha256(f"{email.lower()}\n{key}".encode()).hexdigest()


def _new_delivery(target: Target, channel: Channel, language: str) -> NewDelivery:
    """The salutation follows the letter's language (the target's own for it, if any)."""
    return NewDelivery(
        target_id=target.id,
        target_name=target.name,
        salutation=target.salutation_in(language),
        channel=channel,
        address=target.address(channel) or "",
        target_fields=target_values(target.name_in(language), target.title_in(language)),
    )
