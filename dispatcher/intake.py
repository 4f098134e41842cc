"""Intake: validate a supporter's appeal and store it with all its deliveries in one step."""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from dispatcher.campaigns import Campaign, CampaignCatalog, Target
from dispatcher.models import (
    SENT_CHANNELS,
    AppealReceipt,
    Channel,
    NewAppeal,
    NewDelivery,
    is_language_code,
    utcnow,
)
from dispatcher.render.fax import uncovered_characters
from dispatcher.render.tweet import MAX_WEIGHTED_LENGTH, compose_tweet, weighted_length
from dispatcher.store import Store

MAX_NAME_CHARS = 200
MAX_COUNTRY_CHARS = 64
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Co", "Zl", "Zp"}  # controls, surrogates, line breaks


class IntakeErrorKind(enum.StrEnum):
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    CLOSED = "closed"
    TOO_LARGE = "too_large"
    INVALID = "invalid"


class IntakeError(ValueError):
    """An appeal was refused before anything was stored. ``field`` names the bad input."""

    def __init__(self, field: str | None, message: str, kind: IntakeErrorKind) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.kind = kind


def _invalid(field: str, message: str) -> IntakeError:
    return IntakeError(field, message, IntakeErrorKind.INVALID)


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
    tweet: str | None = None
    language: str | None = None
    idempotency_key: str | None = None
    # Exact (target id, channel) choices, as the supporter page's checkboxes give them;
    # when set, ``targets`` and ``channels`` are not used.
    pairs: Sequence[tuple[str, str]] = ()


def _bad_characters(text: str, *, allow_newlines: bool) -> list[str]:
    allowed = {"\n", "\t"} if allow_newlines else set()
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if ch not in allowed and unicodedata.category(ch) in _FORBIDDEN_CATEGORIES
        }
    )


def clean_line(field: str, value: str, *, limit: int, required: bool) -> str | None:
    value = value.strip()
    if not value:
        if required:
            raise _invalid(field, f"{field} must not be empty")
        return None
    if len(value) > limit:
        raise _invalid(field, f"{field} is {len(value)} characters; at most {limit} are accepted")
    bad = _bad_characters(value, allow_newlines=False)
    if bad:
        raise _invalid(
            field,
            f"{field} {value!r} contains control or line-break characters ({', '.join(bad)}); "
            "use a single line of text",
        )
    return value


def _clean_text(field: str, value: str, *, limit: int) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value:
        raise _invalid(field, f"{field} must not be empty")
    if len(value) > limit:
        raise IntakeError(
            field,
            f"{field} is {len(value)} characters; this campaign accepts at most {limit}",
            IntakeErrorKind.INVALID,
        )
    bad = _bad_characters(value, allow_newlines=True)
    if bad:
        raise _invalid(field, f"{field} contains control characters ({', '.join(bad)})")
    return value


def _choose_targets(campaign: Campaign, wanted: Sequence[str]) -> list[Target]:
    if not wanted:
        return list(campaign.targets)
    chosen: list[Target] = []
    for target_id in dict.fromkeys(wanted):
        target = campaign.target(target_id)
        if target is None:
            known = ", ".join(t.id for t in campaign.targets)
            raise _invalid(
                "targets",
                f"unknown target {target_id!r} in campaign {campaign.id}; known targets: {known}",
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
                if name
                in {
                    "phone",
                    "post",
                    "postal",
                    "letter",
                }
                else ""
            )
            raise _invalid(
                "channels", f"unknown channel {name!r}; accepted: {accepted}{hint}"
            ) from None
    return chosen


def _pairs(
    targets: list[Target], channels: list[Channel] | None, *, targets_explicit: bool
) -> list[tuple[Target, Channel]]:
    pairs: list[tuple[Target, Channel]] = []
    for target in targets:
        available = target.channels
        for channel in channels or available:
            if channel in available:
                pairs.append((target, channel))
            elif targets_explicit and channels is not None:
                have = ", ".join(c.value for c in available) or "none"
                raise _invalid(
                    "channels",
                    f"target {target.id!r} cannot be reached by {channel.value}; "
                    f"its channels: {have}",
                )
    if not pairs:
        asked = ", ".join(c.value for c in channels or ())
        raise _invalid("channels", f"none of the chosen targets can be reached by {asked}")
    return pairs


def _chosen_pairs(
    campaign: Campaign, chosen: Sequence[tuple[str, str]]
) -> list[tuple[Target, Channel]]:
    pairs: list[tuple[Target, Channel]] = []
    for target_id, channel_name in dict.fromkeys(chosen):
        targets = _choose_targets(campaign, [target_id])
        channels = _choose_channels([channel_name])
        pairs.extend(_pairs(targets, channels, targets_explicit=True))
    return pairs


@dataclass(frozen=True, slots=True)
class ValidAppeal:
    appeal: NewAppeal
    deliveries: tuple[NewDelivery, ...]


def closed_error(campaign: Campaign) -> IntakeError:
    return IntakeError(
        "campaign",
        f"campaign {campaign.id!r} closed: its deadline was {campaign.deadline.isoformat()}",
        IntakeErrorKind.CLOSED,
    )


def open_campaign(
    catalog: CampaignCatalog, campaign_id: str, *, now: dt.datetime | None = None
) -> Campaign:
    """The campaign, if it exists and is open; IntakeError (unknown / closed) otherwise."""
    campaign = catalog.get(campaign_id)
    if campaign is None:
        known = ", ".join(catalog.ids) or "none"
        raise IntakeError(
            "campaign",
            f"unknown campaign {campaign_id!r}; known campaigns: {known}",
            IntakeErrorKind.UNKNOWN_CAMPAIGN,
        )
    if not campaign.is_open(now or utcnow()):
        raise closed_error(campaign)
    return campaign


def validate_appeal(
    catalog: CampaignCatalog, request: AppealRequest, *, now: dt.datetime | None = None
) -> ValidAppeal:
    """Check everything before anything is stored; raises IntakeError naming the field.

    Order of checks: unknown campaign, closed campaign, then each field.
    """
    campaign = open_campaign(catalog, request.campaign_id, now=now)
    name = clean_line("supporter.name", request.supporter_name, limit=MAX_NAME_CHARS, required=True)
    assert name is not None
    try:
        email = validate_email(request.supporter_email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise _invalid(
            "supporter.email",
            f"supporter.email {request.supporter_email!r} is not a valid email address: {exc}",
        ) from None
    country = clean_line(
        "supporter.country",
        request.supporter_country or "",
        limit=MAX_COUNTRY_CHARS,
        required=False,
    )

    if request.pairs:
        pairs = _chosen_pairs(campaign, request.pairs)
    else:
        targets = _choose_targets(campaign, request.targets)
        channels = _choose_channels(request.channels)
        pairs = _pairs(targets, channels, targets_explicit=bool(request.targets))
    used = {channel for _, channel in pairs}

    language = (request.language or campaign.default_language).strip().lower()
    template = campaign.letter.get(language)
    if request.message is not None and request.message.strip():
        body = _clean_text("message", request.message, limit=campaign.max_message_chars)
        own_message = True
        if not is_language_code(language):
            raise _invalid("language", f"language {language!r} is not a code such as 'en' or 'zh'")
    else:
        if template is None:
            have = ", ".join(sorted(campaign.letter))
            raise _invalid(
                "language",
                f"campaign {campaign.id} has no sample letter in {language!r} (it has: {have}); "
                "write your own message or choose one of those",
            )
        body = template.body.strip()
        own_message = False
    subject = (template or campaign.letter[campaign.default_language]).subject

    if Channel.FAX in used:
        salutations = " ".join(t.salutation for t, c in pairs if c is Channel.FAX)
        missing = uncovered_characters(" ".join([name, country or "", subject, body, salutations]))
        if missing:
            shown = "".join(missing[:10])
            raise _invalid(
                "message",
                f"the fax font cannot draw these characters: {shown!r}; the fax channel accepts "
                "Latin, Greek, Cyrillic and Chinese (CJK) script — leave out fax or write in one "
                "of those scripts",
            )

    tweet: str | None = None
    if Channel.TWITTER in used:
        tweet = campaign.tweet
        if request.tweet is not None and request.tweet.strip():
            tweet = _clean_text("tweet", request.tweet, limit=MAX_WEIGHTED_LENGTH)
        for target, channel in pairs:
            if channel is not Channel.TWITTER:
                continue
            handles = target.address(channel) or ""
            length = weighted_length(compose_tweet(handles, tweet, name))
            if length > MAX_WEIGHTED_LENGTH:
                whose = "your tweet" if request.tweet else "the campaign tweet"
                raise _invalid(
                    "tweet",
                    f"{whose} is {length} weighted characters once {handles} and your name are "
                    f"added; X accepts at most {MAX_WEIGHTED_LENGTH} (CJK characters count 2)",
                )

    appeal = NewAppeal(
        campaign_id=campaign.id,
        supporter_name=name,
        supporter_email=email.normalized,
        supporter_country=country,
        language=language,
        subject=subject,
        body=body,
        own_message=own_message,
        tweet=tweet,
        expires_at=campaign.closes_at,
        idempotency_key=clean_line(
            "idempotency_key", request.idempotency_key or "", limit=128, required=False
        ),
    )
    deliveries = tuple(
        NewDelivery(
            target_id=target.id,
            target_name=target.name,
            salutation=target.salutation,
            channel=channel,
            address=target.address(channel) or "",
        )
        for target, channel in pairs
    )
    return ValidAppeal(appeal, deliveries)


async def submit_appeal(
    store: Store,
    catalog: CampaignCatalog,
    request: AppealRequest,
    *,
    now: dt.datetime | None = None,
) -> AppealReceipt:
    """Validate, then store supporter, appeal and deliveries in one transaction.

    A repeat (same campaign, supporter email, target and channel) creates nothing and comes
    back as ``already_counted``; that is a success, not an error.
    """
    valid = validate_appeal(catalog, request, now=now)
    return await store.create_appeal(valid.appeal, valid.deliveries, now=now)


def tweet_lengths(campaign: Campaign, text: str | None, supporter_name: str) -> dict[str, int]:
    """Weighted length of the tweet each X target would get (handles + text + signature)."""
    tweet = text.strip() if text and text.strip() else campaign.tweet
    name = supporter_name.strip() or "A supporter"
    return {
        target.id: weighted_length(compose_tweet(" ".join(target.twitter), tweet, name))
        for target in campaign.targets
        if target.twitter
    }
