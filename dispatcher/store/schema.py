"""Tables. The deliveries table is the queue; counts are derived from delivery rows only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in Python; ``timestamptz`` on PostgreSQL, naive UTC text on SQLite.

    SQLite compares timestamps as text, so every stored value must be UTC in one format.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData()

supporters = Table(
    "supporters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email_lc", String(320), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("country", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
)

appeals = Table(
    "appeals",
    metadata,
    # An unguessable token: the supporter's status page is addressed by it.
    Column("id", String(32), primary_key=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("supporter_id", Integer, ForeignKey("supporters.id"), nullable=False),
    Column("supporter_name", String(200), nullable=False),
    Column("supporter_country", String(64)),
    Column("language", String(8), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("own_message", Boolean, nullable=False),
    Column("tweet", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # A client's key for "the same submission again" (sent twice over a flaky network).
    Column("idempotency_key", String(128)),
    # A receipt when its deliveries settle (opt-out); future contact (opt-in). See 0007.
    Column("receipt", Boolean, nullable=False, server_default=true()),
    Column("contact_ok", Boolean, nullable=False, server_default=false()),
    # Officials may reply to the supporter (asked), once confirmed by the link sent to the
    # address (confirmed_at). See 0010.
    Column("reply_to", Boolean, nullable=False, server_default=false()),
    Column("confirmed_at", UTCDateTime),
    # The interface language the supporter used (receipts are written in it), and where
    # they came from (?source= and the UTM parameters). See 0013.
    Column("page_language", String(8)),
    Column("source", String(64)),
    Column("utm_source", String(64)),
    Column("utm_medium", String(64)),
    Column("utm_campaign", String(64)),
    UniqueConstraint("campaign_id", "idempotency_key", name="uq_appeal_idempotency_key"),
)

# Addresses whose owner followed "this wasn't me": a keyed hash only (see 0010). Nothing is
# accepted or sent in their name again.
suppressed_addresses = Table(
    "suppressed_addresses",
    metadata,
    Column("alias", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Messages to the supporter (never to officials): the receipt once their appeal's
# deliveries have settled, and a notice for each delivery that failed for good.
receipts = Table(
    "receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("appeal_id", String(32), ForeignKey("appeals.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("delivery_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("leased_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("appeal_id", "kind", "delivery_id", name="uq_receipt_once"),
    Index("ix_receipts_due", "status", "next_attempt_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("appeal_id", String(32), ForeignKey("appeals.id"), nullable=False, index=True),
    Column("campaign_id", String(64), nullable=False),
    Column("supporter_email_lc", String(320), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("target_name", String(200), nullable=False),
    # The official's merge fields in the letter's language, JSON (see 0013).
    Column("target_fields", Text),
    Column("salutation", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("status", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("lease_owner", String(128)),
    Column("provider_ref", String(128)),
    # The provider it goes (or went) to: set at intake from the settings, and by each
    # attempt; "sandbox" is a rehearsal, counted apart from the actions. See 0011.
    Column("provider", String(16)),
    Column("last_error_class", String(64)),
    Column("last_error_code", String(64)),
    Column("last_error_message", Text),
    # Set when an earlier try's outcome was unknown: "reconciled" (the provider was asked
    # and had it) or "possible_duplicate" (sent again; the provider cannot be asked).
    Column("settlement", String(32)),
    # Attempts that ended in a provider's rate limit (not counted towards the cap).
    Column("paused_attempts", Integer, nullable=False, default=0, server_default="0"),
    # A handed-off X post: when the supporter first opened it through our link. See 0012.
    Column("handoff_opened_at", UTCDateTime),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Dedupe: one delivery per supporter, target and channel in a campaign.
    UniqueConstraint(
        "campaign_id", "supporter_email_lc", "target_id", "channel", name="uq_delivery_once"
    ),
    Index("ix_deliveries_due", "status", "channel", "next_attempt_at", "id"),
    # What expire_overdue reads once a second: the overdue deliveries of each status only.
    Index("ix_deliveries_expiry", "status", "expires_at"),
    Index("ix_deliveries_line", "channel", "address", "status", "id"),
    Index("ix_deliveries_campaign_updated", "campaign_id", "updated_at"),
    Index("ix_deliveries_updated", "updated_at", "id"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # NULL while in flight: a row left NULL by a crashed worker means "outcome unknown".
    Column("outcome", String(32)),
    Column("error_class", String(64)),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("provider_ref", String(128)),
    Column("response_summary", Text),
    # Who it went to: "sandbox" (a rehearsal, never an action) or the provider. See 0011.
    Column("provider", String(16)),
    UniqueConstraint("delivery_id", "number", name="uq_attempt_number"),
)

# Supporters' X accounts, connected on the campaign page (OAuth 2.0 with PKCE): the hash of
# the connection's id (the page holds the id), the hash of the authorisation's state, and
# the PKCE verifier, then the tokens, sealed (encrypted) under a key derived from
# DISPATCHER_SECRET_KEY. Bound to the appeal it was sent with; deleted once that appeal's
# posts settle, or unused after DISPATCHER_TWITTER__CONNECT_WAIT_MINUTES. See 0012.
x_accounts = Table(
    "x_accounts",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("appeal_id", String(32), ForeignKey("appeals.id"), unique=True),
    Column("state_hash", String(64), unique=True),
    Column("sealed", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Actions a supporter took outside the dispatcher (a call, a posted letter): counted apart.
reported_actions = Table(
    "reported_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("target_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("supporter_name", String(200)),
    Column("supporter_email_lc", String(320)),
    Column("created_at", UTCDateTime, nullable=False),
    # One report per supporter, official and kind (see migration 0006).
    Index(
        "ux_reported_once", "campaign_id", "supporter_email_lc", "target_id", "kind", unique=True
    ),
)

# Intake rate limits shared by every `serve` process: hits per key (a hash of the scope
# and the address, never the address itself) in fixed windows numbered from the epoch.
rate_counts = Table(
    "rate_counts",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("window", Integer, primary_key=True),
    Column("hits", Integer, nullable=False),
)

# Pacing shared by every worker: per key ("email:to:<address>", "<channel>:account"), the
# theoretical arrival time of the next send (GCRA) and a provider's pause after a 429.
pacing = Table(
    "pacing",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("tat", UTCDateTime),
    Column("paused_until", UTCDateTime),
    Column("reason", Text),
    # What a provider last said is left of this key's limit, and when it resets (X's
    # x-*-limit-* headers): each send takes one first. See 0012.
    Column("remaining", Integer),
    Column("resets_at", UTCDateTime),
)


# Operator sign-ins: the cookie holds a random session id; only its hash is stored, with
# when it ends (expiry, or sign-out).
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # Who signed in: a name from DISPATCHER_OPERATORS, or the shared token's name.
    Column("operator", String(64), nullable=False),
    # HMAC (under the secret key) of the token the session was opened with, never the
    # token: a session whose operator's token has since changed no longer matches and ends.
    Column("token_fingerprint", String(64), nullable=False),
)

# What operators did: every sign-in (and failed one), retry, cancel and export.
operator_audit = Table(
    "operator_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("operator", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("address", String(64)),
)
