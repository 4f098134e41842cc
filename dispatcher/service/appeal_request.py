"""What intake is asked and what it answers: a supporter's appeal as every caller hands it
in (the campaign page, the embedded form, the JSON API, the CLI), and the refusal listing
every problem with it."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dispatcher.service.errors import ServiceError


class Via(enum.StrEnum):
    """Where an appeal was handed in."""

    FORM = "form"  # the campaign page's form
    EMBED = "embed"  # the same form inside another site's iframe
    API = "api"  # the JSON API
    CLI = "cli"  # an operator's `dispatcher send`

    @property
    def page(self) -> bool:
        """A form a supporter filled in: nothing ticked is nothing chosen (not "all"), a
        tag in the link they followed is dropped if bad (not refused: they did not type
        it), and an X connection left half-way is ignored (its post is handed off)."""
        return self in (Via.FORM, Via.EMBED)

    @property
    def operator(self) -> bool:
        """An operator's tool: told what the store has (a repeat, its deliveries), which a
        page or the API never are (who signed is said only by email, to the address)."""
        return self is Via.CLI


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
    # Where they came from: source, utm_source, utm_medium, utm_campaign.
    sources: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    # Where it was handed in (unsaid: an operator's tool), and the client's address there
    # (counted by the limit per address; None: not counted, as for an operator's tool).
    via: Via = Via.CLI
    client: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An appeal refused with nothing stored: every problem found (the first for each
    field), each naming its field and why, in the order the checks run. ``retry_after``:
    refused by an intake limit (its only problem), the seconds until it may be tried
    again."""

    problems: tuple[ServiceError, ...]
    retry_after: int | None = None

    def __post_init__(self) -> None:
        assert self.problems, "a refusal says why"

    @property
    def first(self) -> ServiceError:
        """The problem a caller that can say only one says (the API, the CLI)."""
        return self.problems[0]
