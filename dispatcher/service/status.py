"""What a supporter sees after sending: each delivery of their appeal, with a reason."""

from __future__ import annotations

import datetime as dt
import re

from babel.dates import get_timezone_name
from pydantic import BaseModel, ConfigDict, Field

from dispatcher.fax_hours import FAX_HOURS, FaxHours
from dispatcher.i18n import N_, _, current
from dispatcher.models import (
    SANDBOX,
    UNCONFIRMED_AT_DEADLINE,
    Channel,
    DeliveryStatus,
    ErrorInfo,
    LogEntry,
    format_time,
    utcnow,
)
from dispatcher.outcomes import UNCONFIRMED
from dispatcher.service.context import Service
from dispatcher.service.links import check_link, is_alias, not_valid
from dispatcher.service.review import REJECTED
from dispatcher.service.x_accounts import hand_off_link, hand_off_text

_NOT_ARRIVED = {DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED}


class AppealDelivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    target: str
    target_name: str
    channel: Channel
    status: DeliveryStatus
    reason: str | None
    rehearsal: bool = False  # it went (or goes) to the built-in sandbox, not the official
    # A handed-off X post: our link to it, prepared, for the supporter to send themselves.
    hand_off: str | None = None


class AppealStatus(BaseModel):
    """An appeal's deliveries in the order they were created."""

    model_config = ConfigDict(frozen=True)

    appeal_id: str
    campaign: str
    deliveries: list[AppealDelivery]
    deleted: bool = Field(
        default=False,
        description="the supporter deleted their name, address and letter (the count stays)",
    )

    @property
    def settled(self) -> bool:
        return all(d.status.settled for d in self.deliveries)


def reason(
    entry: LogEntry, fax_hours: FaxHours | None = None, *, now: dt.datetime | None = None
) -> str | None:
    """What happened and what happens next, in a supporter's words: one sentence for a
    delivery that did not arrive, or will be tried again; None while all is well. The
    provider's own words stay in the operators' log. ``fax_hours``: the window of the
    target's fax line, to say when a fax waiting for it will go."""
    if entry.status is DeliveryStatus.QUEUED and fax_hours is not None:
        waiting = _waiting_for_fax_hours(entry, fax_hours, now or utcnow())
        if waiting is not None:
            return waiting
    if entry.status is DeliveryStatus.EXPIRED:
        if entry.last_error is not None and entry.last_error.message == UNCONFIRMED_AT_DEADLINE:
            return _(
                "You did not confirm your email address before the campaign's deadline. It "
                "will not be sent."
            )
        return _("The campaign's deadline passed before it could be sent. It will not be sent.")
    if entry.status is DeliveryStatus.CANCELLED:
        if entry.last_error is not None and entry.last_error.error_class == REJECTED:
            return _("The campaign's staff did not approve your letter. It will not be sent.")
        return _("The campaign's staff stopped it. It will not be sent.")
    if entry.status is DeliveryStatus.HELD:
        return _("The campaign's staff read letters supporters wrote before they are sent.")
    if entry.status is DeliveryStatus.HANDED_OFF:
        return _(
            "We cannot post this on X for you, so it is ready for you to post from your own "
            "account. We count it apart, because we cannot see whether you did."
        )
    if entry.status is DeliveryStatus.AWAITING_SUPPORTER:
        return _(
            "It carries your email address, so it waits until you follow the link we "
            "emailed you. Everything else is on its way."
        )
    if entry.last_error is None or entry.status not in (*_NOT_ARRIVED, DeliveryStatus.QUEUED):
        return None
    what = what_went_wrong(entry.channel, entry.last_error)
    if entry.status is DeliveryStatus.QUEUED:
        when = format_time(entry.next_attempt_at)
        return _("%(what)s We will try again after %(when)s.") % {"what": what, "when": when}
    return _("%(what)s We will not try again.") % {"what": what}


def _waiting_for_fax_hours(entry: LogEntry, hours: FaxHours, now: dt.datetime) -> str | None:
    """When a queued fax will go, if the line's hours hold it back (None if they do not)."""
    due = max(now, entry.next_attempt_at)
    goes = hours.next_opening(due)
    held = entry.last_error is not None and entry.last_error.error_class == FAX_HOURS
    if goes == due and not held:
        return None
    zone = get_timezone_name(hours.zone, "long", locale=current(), zone_variant="generic")
    if "(UTC)" in zone or "UTC" in hours.zone:
        zone = "UTC"  # CLDR has no generic name for it ("Unknown Region (UTC) Time")
    return _(
        "This fax line is called only between %(opens)s and %(closes)s, %(zone)s. It will "
        "go after %(when)s."
    ) % {
        "opens": f"{hours.opens:%H:%M}",
        "closes": f"{hours.closes:%H:%M}",
        "zone": zone,
        "when": format_time(goes),
    }


# Words in a fax gateway's failure that say what happened on the line.
_FAX_WORDS = (
    (re.compile(r"busy", re.I), N_("The fax line was busy.")),
    (
        re.compile(r"no answer|did not answer|not answer", re.I),
        N_("The fax machine did not answer."),
    ),
    (
        re.compile(r"not operational|invalid|disconnected|not in service", re.I),
        N_("The fax number is out of service."),
    ),
)


def what_went_wrong(channel: Channel, error: ErrorInfo) -> str:
    """One sentence on a failure, by channel and by the class of error the adapter chose
    (in the language being written: see :mod:`dispatcher.i18n`)."""
    kind, code, message = error.error_class, error.code or "", error.message
    if channel is Channel.FAX:
        if kind == UNCONFIRMED:
            return _(
                "The fax service accepted the fax but did not confirm in time that it went through."
            )
        for pattern, words in _FAX_WORDS:
            if pattern.search(message):
                return _(words)
        if "cannot reach" in message or "connection" in message:
            return _("We could not reach the fax service.")
        return _("The fax did not go through.")
    if channel is Channel.TWITTER:
        if kind == "RateLimited":
            return _("X limited how often we can post.")
        if kind == "DuplicateContent":
            return _("X refused the post because the same words were already posted.")
        if kind == "PermanentError":
            return _("X refused the post.")
        return _("We could not reach X.")
    if "DISPATCHER_EMAIL__" in message:
        # Our own relay refused us (a setting the operators must fix; the log names it).
        return _("Our own email service is not working, so the email could not be sent.")
    if kind == "PermanentError" and code.startswith("5"):
        return _("The official's mail server refused the email.")
    if code.startswith("4"):
        return _("The official's mail server asked us to try again later.")
    return _("We could not reach the mail server.")


async def appeal_status(service: Service, appeal_id: str, token: str) -> AppealStatus:
    """ServiceError (not found) for an unknown appeal id, or a token that is not its status
    link's (the link reaches the supporter only by email: see service.links)."""
    check_link(service, "status", appeal_id, token)
    campaign_id = await service.store.appeal_campaign(appeal_id)
    if campaign_id is None:
        raise not_valid()
    campaign = service.catalog.get(campaign_id)
    language = current()
    names = {t.id: t.name_in(language) for t in campaign.targets} if campaign else {}
    windows = {t.id: t.fax_window for t in campaign.targets} if campaign else {}
    entries = await service.store.list_deliveries(appeal_id=appeal_id)
    links = await _hand_off_links(service, appeal_id, entries)
    address = await service.store.appeal_address(appeal_id)
    return AppealStatus(
        appeal_id=appeal_id,
        campaign=campaign_id,
        deleted=address is not None and is_alias(address),
        deliveries=[
            AppealDelivery(
                id=e.id,
                target=e.target_id,
                target_name=names.get(e.target_id, e.target_id),
                channel=e.channel,
                status=e.status,
                reason=reason(e, windows.get(e.target_id) if e.channel is Channel.FAX else None),
                rehearsal=e.provider == SANDBOX,
                hand_off=links.get(e.id),
            )
            for e in sorted(entries, key=lambda e: e.id)
        ],
    )


async def _hand_off_links(
    service: Service, appeal_id: str, entries: list[LogEntry]
) -> dict[int, str]:
    """Each handed-off post's link to send it (delivery id → link)."""
    handed = [e for e in entries if e.status is DeliveryStatus.HANDED_OFF]
    appeal = await service.store.receipt_appeal(appeal_id) if handed else None
    if appeal is None or not appeal.tweet:
        return {}
    return {
        e.id: hand_off_link(service, appeal_id, e.target_id, hand_off_text(e.address, appeal.tweet))
        for e in handed
    }
