"""Checking a supporter's appeal before anything is stored, one named step at a time.

:func:`validate_appeal` runs the steps in order: the campaign (unknown, closed), the
supporter, the targets × channels, the letter, what the fax font can draw, and the post's
length on X. Each raises a :class:`ServiceError` naming the field and what is accepted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email

from dispatcher.campaigns import Campaign, CampaignCatalog, Target
from dispatcher.merge_fields import merge, supporter_values, target_values
from dispatcher.models import (
    SENT_CHANNELS,
    Channel,
    NewAppeal,
    NewDelivery,
    is_language_code,
)
from dispatcher.service.appeal_parts import Letter, Supporter
from dispatcher.service.catalog import open_campaign
from dispatcher.service.errors import ServiceError, invalid
from dispatcher.service.fax_rules import check_fax_font, check_fax_pages
from dispatcher.service.post_rules import check_post_content as check_post_content
from dispatcher.service.post_rules import check_tweet
from dispatcher.service.sources import check_page_language, check_sources

# Re-exported: the reported-actions form checks a supporter by the same rules.
from dispatcher.service.text_rules import check_name as check_name
from dispatcher.service.text_rules import clean_line as clean_line
from dispatcher.service.text_rules import clean_text as clean_text
from dispatcher.service.text_rules import plain_words

MAX_COUNTRY_CHARS = 64
MAX_KEY_CHARS = 128
# The name a post is weighed with before the supporter has typed one.
PLACEHOLDER = "A supporter"
_REPORTED_NOT_SENT = {"phone", "post", "postal", "letter"}
Pair = tuple[Target, Channel]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AppealRequest:
    """What a supporter asks for; everything optional is chosen from the campaign."""

    campaign_id: str
    supporter_name: str
    supporter_email: str
    supporter_country: str | None = None
    targets: Sequence[str] = ()
    channels: Sequence[str] = ()
    message: str | None = None
    # The supporter's own subject line (campaigns with editable_subject); None: one of the
    # campaign's.
    subject: str | None = None
    tweet: str | None = None
    language: str | None = None
    idempotency_key: str | None = None
    # Exact (target id, channel) choices, as the supporter page's checkboxes give them;
    # when set, ``targets`` and ``channels`` are not used.
    pairs: Sequence[tuple[str, str]] = ()
    receipt: bool = True
    contact_ok: bool = False
    # "Let the officials reply to me at this address" (campaign reply_to_supporter "ask").
    reply_to: bool = False
    # The id of the X account connection made on the campaign page (service.x_accounts):
    # the posts go out from that account.
    x_connection: str | None = None
    # The interface language the supporter used (their receipt is written in it).
    page_language: str | None = None
    # Where they came from: source, utm_source, utm_medium, utm_campaign. ``strict``: a
    # bad tag is an error (the API); else dropped (a link the supporter followed).
    sources: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    strict_sources: bool = True


@dataclass(frozen=True, slots=True)
class ValidAppeal:
    appeal: NewAppeal
    deliveries: tuple[NewDelivery, ...]


def validate_appeal(
    catalog: CampaignCatalog, request: AppealRequest, *, now: dt.datetime | None = None
) -> ValidAppeal:
    """Check everything before anything is stored; raises ServiceError naming the field.

    Order of checks: unknown campaign, closed campaign, then each field.
    """
    campaign = open_campaign(catalog, request.campaign_id, now=now)
    supporter = check_supporter(request)
    pairs = check_choices(campaign, request)
    written = check_letter(campaign, request)
    letter = merged(written, supporter)
    used = {channel for _, channel in pairs}
    if Channel.FAX in used:
        check_fax_font(supporter, letter, pairs)
        check_fax_pages(campaign, supporter, letter, pairs)
    tweet = None
    if Channel.TWITTER in used:
        tweet = check_tweet(
            campaign, request.language, request.tweet, (supporter.name, supporter.country), pairs
        )
    appeal = NewAppeal(
        campaign_id=campaign.id,
        supporter_name=supporter.name,
        supporter_email=supporter.email,
        supporter_country=supporter.country,
        language=letter.language,
        subject=letter.subject,
        body=letter.body,
        own_message=letter.own,
        tweet=None
        if tweet is None
        else merge(tweet, supporter_values(supporter.name, supporter.country)),
        expires_at=campaign.closes_at,
        idempotency_key=_scoped_key(supporter.email, request.idempotency_key),
        receipt=request.receipt,
        contact_ok=request.contact_ok,
        held=campaign.review_own_letters and needs_review(campaign, supporter, written, tweet),
        reply_to=campaign.reply_to_supporter == "always"
        or (campaign.reply_to_supporter == "ask" and request.reply_to),
        page_language=check_page_language(request.page_language),
        sources=check_sources(request.sources, strict=request.strict_sources),
    )
    deliveries = tuple(_new_delivery(target, channel, letter.language) for target, channel in pairs)
    return ValidAppeal(appeal, deliveries)


def appeal_problems(
    catalog: CampaignCatalog, request: AppealRequest, *, now: dt.datetime | None = None
) -> list[ServiceError]:
    """Every problem at once, the first for each field, in the order of the form (a page
    lists them all, where :func:`validate_appeal` stops at the first). Checks that need
    an earlier answer (the post needs the name and the choices) run once those passed."""
    problems: dict[str | None, ServiceError] = {}

    def attempt(check: Callable[[], T]) -> T | None:
        try:
            return check()
        except ServiceError as exc:
            problems.setdefault(exc.field, exc)
            return None

    campaign = attempt(lambda: open_campaign(catalog, request.campaign_id, now=now))
    if campaign is None:
        return list(problems.values())
    pairs = attempt(lambda: check_choices(campaign, request))
    letter = attempt(lambda: check_letter(campaign, request))
    supporter = attempt(lambda: check_supporter(request))
    if supporter is None:  # each of its fields on its own, to name every one that is wrong
        attempt(lambda: check_email("supporter.email", request.supporter_email))
        attempt(
            lambda: clean_line(
                "supporter.country",
                request.supporter_country or "",
                limit=MAX_COUNTRY_CHARS,
                required=False,
            )
        )
    if pairs:
        used = {channel for _, channel in pairs}
        if Channel.TWITTER in used:  # weighed as the live counter does while no name is valid
            name = supporter.name if supporter else request.supporter_name.strip() or PLACEHOLDER
            who = (name, supporter.country if supporter else None)
            attempt(lambda: check_tweet(campaign, request.language, request.tweet, who, pairs))
        if Channel.FAX in used and letter is not None and supporter is not None:
            full = merged(letter, supporter)
            attempt(lambda: check_fax_font(supporter, full, pairs))
            attempt(lambda: check_fax_pages(campaign, supporter, full, pairs))
    return list(problems.values())


def _scoped_key(email: str, key: str | None) -> str | None:
    """The idempotency key as stored: bound to the supporter's address, so that the same
    key from someone else is a different request (and never finds this one's appeal)."""
    cleaned = clean_line("idempotency_key", key or "", limit=MAX_KEY_CHARS, required=False)
    if cleaned is None:
        return None
    return hashlib.sha256(f"{email.lower()}\n{cleaned}".encode()).hexdigest()


def needs_review(
    campaign: Campaign, supporter: Supporter, letter: Letter, tweet: str | None
) -> bool:
    """Whether anything the supporter wrote goes out in words of their own, for a
    campaign that reviews them: a letter or post they wrote or changed, or a name or
    country (signed under every letter, the name also under the public post) that is not
    plainly a name or a country: digits, symbols, or more than a few words."""
    return (
        letter.own
        or letter.own_subject
        or (tweet is not None and tweet != campaign.tweet_in(letter.language))
        or not plain_words(supporter.name)
        or (supporter.country is not None and not plain_words(supporter.country))
    )


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


# ---------------------------------------------------------------- the supporter


def check_supporter(request: AppealRequest) -> Supporter:
    name = check_name("supporter.name", request.supporter_name, required=True)
    assert name is not None
    email = check_email("supporter.email", request.supporter_email)
    country = clean_line(
        "supporter.country",
        request.supporter_country or "",
        limit=MAX_COUNTRY_CHARS,
        required=False,
    )
    return Supporter(name, email, country)


def check_email(field: str, value: str) -> str:
    """A supporter's address, normalised (NFKC: ｄｕｐ@example.org is dup@example.org), in
    plain ASCII before the @ (the relay cannot carry anything else there)."""
    raw = unicodedata.normalize("NFKC", value).strip()
    local = raw.rpartition("@")[0]
    if local and not local.isascii():
        raise invalid(
            field,
            f"{field} {value!r} has characters outside plain ASCII before the @; "
            "use an address written with a–z, 0–9 and . _ + - there",
            "email_not_ascii",
        )
    try:
        email = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise invalid(
            field, f"{field} {value!r} is not a valid email address: {exc}", "email_invalid"
        ) from None
    return email.normalized


# ---------------------------------------------------------------- targets × channels


def check_choices(campaign: Campaign, request: AppealRequest) -> list[Pair]:
    """The (target, channel) pairs to deliver: exact picks, or targets × channels."""
    if request.pairs:
        pairs: list[Pair] = []
        for target_id, channel_name in dict.fromkeys(request.pairs):
            targets = _choose_targets(campaign, [target_id])
            pairs.extend(_pairs(targets, _choose_channels([channel_name]), explicit=True))
        return pairs
    targets = _choose_targets(campaign, request.targets)
    channels = _choose_channels(request.channels)
    return _pairs(targets, channels, explicit=bool(request.targets))


def _choose_targets(campaign: Campaign, wanted: Sequence[str]) -> list[Target]:
    if not wanted:
        return list(campaign.targets)
    chosen: list[Target] = []
    for target_id in dict.fromkeys(wanted):
        target = campaign.target(target_id)
        if target is None:
            known = ", ".join(t.id for t in campaign.targets)
            raise invalid(
                "targets",
                f"unknown target {target_id!r} in campaign {campaign.id}; known targets: {known}",
                "unknown_target",
            )
        chosen.append(target)
    return chosen


def _choose_channels(wanted: Sequence[str]) -> list[Channel] | None:
    if not wanted:
        return None
    chosen: list[Channel] = []
    accepted = ", ".join(c.value for c in SENT_CHANNELS)
    for name in dict.fromkeys(wanted):
        try:
            chosen.append(Channel(name.strip().lower()))
        except ValueError:
            hint = (
                " (phone calls and posted letters are reported, not sent)"
                if name in _REPORTED_NOT_SENT
                else ""
            )
            raise invalid(
                "channels",
                f"unknown channel {name!r}; accepted: {accepted}{hint}",
                "unknown_channel",
            ) from None
    return chosen


def _pairs(targets: list[Target], channels: list[Channel] | None, *, explicit: bool) -> list[Pair]:
    """Every chosen channel of every chosen target. A channel a target lacks is skipped,
    unless both were named explicitly: then it is an error."""
    pairs: list[Pair] = []
    for target in targets:
        available = target.channels
        for channel in channels or available:
            if channel in available:
                pairs.append((target, channel))
            elif explicit and channels is not None:
                have = ", ".join(c.value for c in available) or "none"
                raise invalid(
                    "channels",
                    f"target {target.id!r} cannot be reached by {channel.value}; "
                    f"its channels: {have}",
                    "channel_unavailable",
                )
    if not pairs:
        asked = ", ".join(c.value for c in channels or ())
        raise invalid(
            "channels", f"none of the chosen targets can be reached by {asked}", "no_choice"
        )
    return pairs


# ---------------------------------------------------------------- the letter


def check_letter(campaign: Campaign, request: AppealRequest) -> Letter:
    """The supporter's own words, or the campaign's sample in the chosen language, and
    the subject line: the supporter's own (campaigns with ``editable_subject``) or one of
    the letter's, the same for the same supporter."""
    language = (request.language or campaign.default_language).strip().lower()
    template = campaign.letter.get(language)
    if request.message is not None and request.message.strip():
        body = clean_text("message", request.message, limit=campaign.max_message_chars)
        if not is_language_code(language):
            raise invalid(
                "language", f"language {language!r} is not a code such as 'en' or 'zh'", "language"
            )
        language = written_in(body, language, campaign)
        subject, own_subject = check_subject(campaign, request, language)
        return Letter(language, subject, body, own=True, own_subject=own_subject)
    if template is None:
        have = ", ".join(sorted(campaign.letter))
        raise invalid(
            "language",
            f"campaign {campaign.id} has no sample letter in {language!r} (it has: {have}); "
            "write your own message or choose one of those",
            "language",
        )
    subject, own_subject = check_subject(campaign, request, language)
    return Letter(language, subject, template.body.strip(), own=False, own_subject=own_subject)


def check_subject(campaign: Campaign, request: AppealRequest, language: str) -> tuple[str, bool]:
    """(subject line, whether the supporter wrote it)."""
    letter = campaign.letter.get(language) or campaign.letter[campaign.default_language]
    typed = (request.subject or "").strip()
    if typed and typed not in letter.subject_lines:
        if not campaign.editable_subject:
            raise invalid(
                "subject",
                f"campaign {campaign.id} sets its subject lines; accepted: no subject (one of "
                "the campaign's is used)",
                "subject_fixed",
            )
        own = clean_line("subject", typed, limit=campaign.max_subject_chars, required=True)
        return own or typed, True
    if typed:
        return typed, False
    key = f"{campaign.id}\n{request.supporter_email.strip().lower()}"
    return letter.subject_for(key), False


def merged(letter: Letter, supporter: Supporter) -> Letter:
    """The letter with the supporter's merge fields filled in (the official's are filled
    in as each delivery is rendered)."""
    values = supporter_values(supporter.name, supporter.country)
    return dataclasses.replace(
        letter, subject=merge(letter.subject, values), body=merge(letter.body, values)
    )


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def written_in(body: str, chosen: str, campaign: Campaign) -> str:
    """The language a supporter's own letter is written in, so that its frame (greeting,
    subject, closing) matches it: Chinese if most of its letters are Chinese characters,
    not Chinese if almost none are; else (or if the campaign has no letter in the language
    found) the one chosen on the page."""
    letters = [ch for ch in body if ch.isalpha()]
    if not letters:
        return chosen
    share = sum(map(_is_cjk, letters)) / len(letters)
    if share >= 0.3 and chosen != "zh" and "zh" in campaign.letter:
        return "zh"
    if share < 0.02 and chosen == "zh":
        others = [lang for lang in campaign.letter if lang != "zh"]
        fallback = campaign.default_language if campaign.default_language != "zh" else None
        return fallback or (others[0] if others else chosen)
    return chosen
