"""What every service function works with, opened once by the composition root."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from dispatcher.campaigns import CampaignCatalog
from dispatcher.channels.x_oauth import XOAuthClient
from dispatcher.models import SANDBOX, SENT_CHANNELS, Channel
from dispatcher.retry import RetryPolicy
from dispatcher.store import Store
from dispatcher.store.ports import IntakeStore, OperatorActions, ReportingStore


@dataclass(frozen=True, slots=True)
class Service:
    """The store, the campaigns and the delivery rules, handed to every service function.

    The web app and the CLI receive one from :func:`dispatcher.runtime.open_service`; they
    pass it on and never reach into the store themselves.
    """

    store: Store
    catalog: CampaignCatalog
    policy: RetryPolicy
    # How long after an accepted fax its status is asked for again.
    poll_seconds: float
    # Signs the link in a receipt that deletes the supporter's data: derived from
    # DISPATCHER_SECRET_KEY (every process must agree), else this process's own.
    link_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # Where supporters reach the pages: the links in receipts start with it.
    public_url: str = "http://127.0.0.1:8000"
    # Where each channel sends: a provider's name, "sandbox" (a rehearsal: never counted
    # as an action), or None when the channel is off (live mode, no provider settings).
    providers: Mapping[Channel, str | None] = field(
        default_factory=lambda: dict.fromkeys(SENT_CHANNELS, SANDBOX)
    )

    # Whether posting from the organisation's X account is possible here (its keys, or
    # the sandbox). Otherwise such posts are handed off.
    x_organisation: bool = True
    # The X app supporters connect their own accounts to (None: not set up; their posts
    # are handed to them instead).
    x_oauth: XOAuthClient | None = None

    # The store as each consumer sees it: only what it needs (dispatcher.store.ports).
    @property
    def for_intake(self) -> IntakeStore:
        return self.store

    @property
    def for_operators(self) -> OperatorActions:
        return self.store

    @property
    def for_reports(self) -> ReportingStore:
        return self.store

    def rehearsing(self, channel: Channel) -> bool:
        return self.providers.get(channel) == SANDBOX

    def channel_on(self, channel: Channel) -> bool:
        return self.providers.get(channel) is not None
