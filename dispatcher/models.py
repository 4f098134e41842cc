"""Domain types and the records every layer passes around (no I/O here).

Enums and small value types first, then what intake hands the store, what a worker
holds while it sends, what an outcome records, and what the delivery log shows.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Channel(enum.StrEnum):
    EMAIL = "email"
    FAX = "fax"
    TWITTER = "twitter"


SENT_CHANNELS: tuple[Channel, ...] = tuple(Channel)
# The provider name of what goes to the built-in sandbox servers: a rehearsal, recorded
# with each attempt and never counted as an action.
SANDBOX = "sandbox"
# The "provider" of an X post the supporter sends themselves from a prepared link: nothing
# we can confirm, so it is counted apart, as unverified, never as an action.
HAND_OFF = "hand_off"


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC: the only clock the layers use."""
    return dt.datetime.now(dt.UTC)


def format_time(when: dt.datetime) -> str:
    """The one way a time is written for people, on every page, export and in the CLI:
    date, time to the second, and the zone (always UTC, so operators in different places
    read the same thing): '2026-12-02 18:20:44 UTC'. operator.js writes the same."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def is_language_code(code: str) -> bool:
    """A language code such as ``en``, ``zh`` or ``zh-hant`` (2-8 letters, digits, hyphens)."""
    return 2 <= len(code) <= 8 and code.replace("-", "").isalnum()


class DeliveryStatus(enum.StrEnum):
    # Held for an operator to read a supporter-written letter (campaign review_own_letters):
    # approved, it is queued; rejected, cancelled. Never claimed while held.
    HELD = "held"
    # An email whose supporter asked the officials to be able to reply to them: it waits
    # until they follow the signed link sent to that address (it carries Reply-To then).
    # Never claimed while waiting; expired at the deadline.
    AWAITING_SUPPORTER = "awaiting_supporter"
    QUEUED = "queued"
    SENDING = "sending"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    # An X post the API could not send (no account connected, X refused the app or the
    # account): the supporter was given the prepared post to send themselves. Settled, and
    # counted as unverified, never as an action.
    HANDED_OFF = "handed_off"

    @property
    def settled(self) -> bool:
        return self in SETTLED_STATUSES


SETTLED_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.CANCELLED,
        DeliveryStatus.HANDED_OFF,
    }
)
# Why an email that waited for its supporter to confirm their address expired (the store
# writes it; the status page says it in the supporter's words).
UNCONFIRMED_AT_DEADLINE = "the supporter did not confirm their address before the campaign deadline"

# On their way: the worker claims, polls or expires them (and drains until none are left).
PENDING_STATUSES = frozenset(
    {DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.AWAITING_CONFIRMATION}
)
# Not settled yet: on their way, held for review, or waiting for the supporter's link. A
# receipt waits for these, and a supporter's letter is kept while any of them needs it.
UNSETTLED_STATUSES = PENDING_STATUSES | {DeliveryStatus.HELD, DeliveryStatus.AWAITING_SUPPORTER}


class XRoute(enum.StrEnum):
    """How an appeal's X deliveries start (see ``service.intake``): queued for the API
    (from the organisation's account, or the supporter's, connected on the campaign page),
    or handed off at once for the supporter to send themselves."""

    QUEUE = "queue"
    HAND_OFF = "hand_off"


class AttemptOutcome(enum.StrEnum):
    """How one attempt ended. ``unknown`` means the provider may have received it."""

    DELIVERED = "delivered"
    ACCEPTED = "accepted"  # handed to a provider that confirms later (fax)
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    # The worker did not send: it could not renew its lease in time (not counted).
    NOT_SENT = "not_sent"


class QueueEvent(enum.StrEnum):
    """What the store announces to whoever listens (see ``Store.events``)."""

    QUEUED = "queued"  # deliveries became due now
    CHANGED = "changed"  # a delivery's state changed


class Settlement(enum.StrEnum):
    """How a delivery was settled after a try whose outcome is unknown (a crash, a lost
    connection): the provider was asked and had it, or it was sent again and may have
    arrived twice (email cannot be asked)."""

    RECONCILED = "reconciled"
    POSSIBLE_DUPLICATE = "possible_duplicate"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What the delivery log shows about a failure: our class, the provider's code and text."""

    error_class: str
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a worker holds a lease on, with everything needed to render and send it."""

    id: int
    appeal_id: str
    campaign_id: str
    target_id: str
    target_name: str
    salutation: str
    channel: Channel
    address: str
    status: DeliveryStatus
    attempts: int
    provider_ref: str | None
    expires_at: dt.datetime
    supporter_name: str
    supporter_email: str
    supporter_country: str | None
    language: str
    subject: str
    body: str
    tweet: str | None
    earlier_outcome_unknown: bool
    # The supporter confirmed (signed link to their address) that officials may reply to
    # them: only then does an email carry their address in Reply-To.
    reply_to: bool = False
    # Attempts that ended in a provider's rate limit: they do not count towards the cap.
    paused_attempts: int = 0
    # Earlier attempts X refused as a duplicate while nothing of ours could have gone out:
    # the next post carries another reference (see render.tweet.post_reference).
    duplicates_before: int = 0
    # When the provider accepted the attempt this delivery awaits confirmation of (None
    # for a send): the confirmation's wait is bounded from then.
    accepted_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class NewAppeal:
    campaign_id: str
    supporter_name: str
    supporter_email: str
    supporter_country: str | None
    language: str
    subject: str
    body: str
    own_message: bool
    tweet: str | None
    expires_at: dt.datetime
    idempotency_key: str | None = None
    receipt: bool = True  # email the supporter a receipt once every delivery has settled
    contact_ok: bool = False  # the supporter agreed to hear from the organisation again
    held: bool = False  # their own words, in a campaign that reviews them: held, not queued
    # The supporter asked that officials may reply to their address: its emails wait for
    # the address to be confirmed (awaiting_supporter), then carry it in Reply-To.
    reply_to: bool = False
    # A keyed hash of the address (service.links.address_alias): a supporter who deleted
    # their data is still counted once, and an address whose owner said "this wasn't me"
    # is known without keeping it.
    email_alias: str = ""
    # How its X deliveries start.
    x_route: XRoute = XRoute.QUEUE
    # Why its X deliveries are handed off at once (the log shows it), for HAND_OFF.
    x_note: str = ""
    # The hash of the X account connection (see service.x_accounts) its posts go out
    # from: bound to this appeal as it is stored.
    x_connection: str | None = None
    # Who that account is, as its posts are told apart: ("x:<X's user id>", the same
    # under the address-alias key). Its posts are counted once per account, target and
    # campaign, whatever the address did before (a repeat address posts too: whoever
    # connected the account cannot learn from it whether the address had taken part).
    x_account: tuple[str, ...] = ()
    # The interface language the supporter used: their receipt is written in it (None:
    # the letter's language).
    page_language: str | None = None
    # Where the supporter came from: ?source= and utm_source / utm_medium / utm_campaign.
    sources: Sources = field(default_factory=lambda: Sources())


@dataclass(frozen=True, slots=True)
class Sources:
    """Where an appeal came from: a campaign's own ``source`` tag and the UTM parameters
    of the link the supporter followed; each a short slug or None."""

    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None

    FIELDS = ("source", "utm_source", "utm_medium", "utm_campaign")

    def values(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in self.FIELDS}


@dataclass(frozen=True, slots=True)
class NewDelivery:
    target_id: str
    target_name: str
    salutation: str
    channel: Channel
    address: str
    # {target.name}, {target.title} in the letter's language (dispatcher.merge_fields).
    target_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    id: int
    target_id: str
    channel: Channel
    status: DeliveryStatus


@dataclass(frozen=True, slots=True)
class AppealReceipt:
    """The result of intake, as the service and an operator's tool see it: what was created,
    and what this supporter had already (``already_counted``). Whoever submitted an appeal
    is told neither: see ``service.intake.Accepted``."""

    appeal_id: str
    created: tuple[DeliverySummary, ...]
    already_counted: tuple[DeliverySummary, ...]
    # The address's owner said "this wasn't me": nothing was stored.
    suppressed: bool = False

    @property
    def is_repeat(self) -> bool:
        return not self.created


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """The outcome of handling one claimed delivery, recorded by ``Store.record_outcomes``.

    ``attempt_outcome`` closes the delivery's current attempt row (None for a status poll
    that settled nothing). ``next_attempt_at`` is when it is due again (queued or polling).
    ``attempt`` is the attempt number the delivery was claimed at: the update applies only
    while the delivery is still on that attempt (a rescue by another worker moved it on).
    """

    delivery_id: int
    status: DeliveryStatus
    next_attempt_at: dt.datetime | None = None
    provider_ref: str | None = None
    error: ErrorInfo | None = None
    attempt_outcome: AttemptOutcome | None = None
    response_summary: str | None = None
    attempt: int | None = None
    settlement: Settlement | None = None
    # A provider's rate limit: the whole channel waits until then (every worker), and this
    # attempt is not counted towards the cap.
    pause_until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    appeal_id: str
    campaign_id: str
    target_id: str
    channel: Channel
    address: str
    status: DeliveryStatus
    attempts: int
    provider_ref: str | None
    last_error: ErrorInfo | None
    next_attempt_at: dt.datetime
    updated_at: dt.datetime
    settlement: Settlement | None = None
    # Where it goes (or went): a provider's name, or "sandbox" (a rehearsal). None for
    # rows from before providers were recorded.
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptEntry:
    delivery_id: int
    number: int
    worker: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None
    error: ErrorInfo | None
    provider_ref: str | None
    response_summary: str | None
    provider: str | None = None  # where this try went: a provider, or "sandbox"


@dataclass(frozen=True, slots=True)
class PacingRules:
    """Sends per minute allowed, shared by every worker through the database (0: no limit).

    ``per_recipient`` paces each email address (officials' relays throttle a sender that
    writes to one inbox too fast); ``per_account`` paces each channel's provider account.
    A campaign may set its own values, which apply to its deliveries.
    """

    per_recipient: int = 30
    per_account: Mapping[Channel, int] = field(default_factory=dict)
    campaigns: Mapping[str, CampaignPacing] = field(default_factory=dict)

    def recipient_rate(self, campaign_id: str) -> int:
        own = self.campaigns.get(campaign_id)
        if own is not None and own.email_per_recipient_per_minute is not None:
            return own.email_per_recipient_per_minute
        return self.per_recipient

    def account_rate(self, campaign_id: str, channel: Channel) -> int:
        own = self.campaigns.get(campaign_id)
        if own is not None and own.per_account.get(channel) is not None:
            return own.per_account[channel]
        return self.per_account.get(channel, 0)


@dataclass(frozen=True, slots=True)
class CampaignPacing:
    email_per_recipient_per_minute: int | None = None
    per_account: Mapping[Channel, int] = field(default_factory=dict)
