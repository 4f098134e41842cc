"""Messages to the supporter's address: the receipt, a notice when a delivery fails for
good, the link that confirms officials may reply to them, and a notice that an appeal
they had sent was sent again.

Sent over the same relay as the letters, to the supporter only (never by the officials'
channels): what was delivered where, what failed and why in plain words, the status
link and "this wasn't me". A copy of the letter, their name and the link that deletes
their data go only to an address its owner confirmed (anyone can type an address). A
supporter who unticked "Email me a receipt" gets neither receipt nor failure notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

from dispatcher.channels.base import DeliveryError, PermanentError
from dispatcher.channels.registry import CHANNEL_LABELS
from dispatcher.i18n import _, current, format_date, sentences, speaking
from dispatcher.logs import get_logger
from dispatcher.models import SANDBOX, Channel, DeliveryStatus, LogEntry, utcnow
from dispatcher.service.context import Service
from dispatcher.service.forget import forget_link
from dispatcher.service.links import link
from dispatcher.service.review import REJECTED
from dispatcher.service.status import reason
from dispatcher.service.x_accounts import hand_off_link, hand_off_text
from dispatcher.store import lasting_problem
from dispatcher.store.receipts import CONFIRM, FAILURE, REPEAT, ReceiptAppeal, ReceiptJob

log = get_logger(__name__)

MAX_TRIES = 6
LEASE_SECONDS = 120.0
# Scans look this far back past the last one: a transaction stamps its changes before
# it commits, so a change may show up a little after its stamp.
_LOOK_BACK = dt.timedelta(seconds=30)


class Sender(Protocol):
    async def send_message(self, recipient: str, message: EmailMessage) -> str: ...


def _line(entry: LogEntry, names: dict[str, str], post: str | None = None) -> str:
    """One delivery's line; ``post``: the link to a handed-off post (only to an address
    its owner confirmed: the link carries the post's words)."""
    values = {
        "who": names.get(entry.target_id, entry.target_id),
        "how": _(CHANNEL_LABELS.get(entry.channel, entry.channel.value)),
    }
    if entry.status is DeliveryStatus.HANDED_OFF:
        if post is None:
            return (
                _(
                    "- %(who)s, by %(how)s: ready for you to post from your own account "
                    "(the link to it is on the appeal's page)."
                )
                % values
            )
        return _(
            "- %(who)s, by %(how)s: we cannot post it for you; post it from your own "
            "account here: %(url)s"
        ) % {**values, "url": post}
    if entry.status is DeliveryStatus.DELIVERED and entry.provider == SANDBOX:
        return (
            _(
                "- %(who)s, by %(how)s: received by our test server (a rehearsal: the official "
                "did not receive it)."
            )
            % values
        )
    if entry.status is DeliveryStatus.DELIVERED:
        return _("- %(who)s, by %(how)s: delivered.") % values
    if entry.status.settled:
        # Why, as the status page says it: a provider's failure in plain words, and a
        # cancellation or an expiry as what it was, never as a provider's failure.
        why = reason(entry) or ""
        return sentences(_("- %(who)s, by %(how)s: not delivered.") % values, why)
    if entry.status is DeliveryStatus.AWAITING_SUPPORTER:
        return _("- %(who)s, by %(how)s: waiting for you to confirm your address.") % values
    return _("- %(who)s, by %(how)s: still on its way.") % values


def compose(
    service: Service,
    job: ReceiptJob,
    appeal: ReceiptAppeal,
    entries: Sequence[LogEntry],
    from_address: str,
    from_name: str,
) -> EmailMessage:
    """The message, in the language of the pages the supporter used (English or Chinese),
    whatever the letter's language."""
    with speaking(appeal.page_language):
        subject, lines = _words(service, job, appeal, entries)
    message = EmailMessage()
    message["From"] = f"{from_name} <{from_address}>"
    message["To"] = appeal.supporter_email
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    message.set_content("\n".join(lines))
    return message


def _rejected(entries: Sequence[LogEntry]) -> bool:
    """Staff rejected the letter: nothing went, and every delivery says so."""
    return bool(entries) and all(
        e.status is DeliveryStatus.CANCELLED
        and e.last_error is not None
        and e.last_error.error_class == REJECTED
        for e in entries
    )


@dataclass(frozen=True, slots=True)
class _About:
    """What every message to the supporter says, in the language being written."""

    title: str
    org: str
    names: dict[str, str]  # target id → name
    hello: str
    status: str  # "Follow the appeal: <link>"
    not_me: str  # "If this wasn't you …: <link>"


def _about(service: Service, appeal: ReceiptAppeal) -> _About:
    language = current()
    campaign = service.catalog.get(appeal.campaign_id)
    status = link(service, "status", appeal.appeal_id)
    not_me = link(service, "not-me", appeal.appeal_id)
    return _About(
        title=campaign.title_in(language) if campaign else appeal.campaign_id,
        org=campaign.organisation_in(language) if campaign else "—",
        names={t.id: t.name_in(language) for t in campaign.targets} if campaign else {},
        hello=_("Dear %(name)s,") % {"name": appeal.supporter_name}
        if appeal.confirmed
        else _("Hello,"),
        status=_("Follow the appeal: %(url)s") % {"url": status},
        not_me=_(
            "If this wasn't you, tell us and we will stop what has not gone out and send "
            "nothing in the name of this address again: %(url)s"
        )
        % {"url": not_me},
    )


def _words(
    service: Service, job: ReceiptJob, appeal: ReceiptAppeal, entries: Sequence[LogEntry]
) -> tuple[str, list[str]]:
    """What the message says. The address may not be its owner's doing (anyone can type
    an address): unless the supporter confirmed it by a link we sent there, a message
    carries nothing the supporter wrote (no name, letter or post) and no link but ours,
    among them "this wasn't me"."""
    about = _about(service, appeal)
    if job.kind == CONFIRM:
        return _confirm_words(service, appeal, about)
    if job.kind == REPEAT:
        return _repeat_words(appeal, about)
    if _rejected(entries):
        subject = _("Your appeal was not sent: %(title)s") % {"title": about.title}
        sentence = _(
            "The campaign's staff did not approve the letter sent with this email address, "
            "so nothing was sent to the officials."
        )
        again = _("You can still take part by sending the campaign's own letter: %(url)s") % {
            "url": f"{service.public_url}/c/{appeal.campaign_id}"
        }
        return subject, [about.hello, "", sentence, again, "", about.status]
    return _receipt_words(service, job, appeal, entries, about)


def _confirm_words(service: Service, appeal: ReceiptAppeal, about: _About) -> tuple[str, list[str]]:
    subject = _("Confirm your email address: %(title)s") % {"title": about.title}
    asked = _(
        "An appeal to %(title)s was sent with this email address, asking that the officials "
        "may reply to it. They will see this address only if you confirm it here:"
    ) % {"title": about.title}
    waiting = _(
        "Until then, the emails to the officials wait (until the campaign's deadline at the "
        "latest). The other messages are on their way."
    )
    confirm = link(service, "confirm", appeal.appeal_id)
    return subject, [about.hello, "", asked, "", confirm, "", waiting, "", about.status, "",
                     about.not_me]  # fmt: skip


def _repeat_words(appeal: ReceiptAppeal, about: _About) -> tuple[str, list[str]]:
    subject = _("You had already taken part: %(title)s") % {"title": about.title}
    told = _(
        "Someone, probably you, sent an appeal to %(title)s again with this email address. "
        "This address had taken part already on %(date)s. Each person's message to each "
        "official is sent and counted once, so nothing new was sent."
    ) % {"title": about.title, "date": format_date(appeal.created_at.date())}
    return subject, [about.hello, "", told, "", about.status, "", about.not_me]


def _letter_heading(entries: Sequence[LogEntry]) -> str:
    """Called "as it was sent" only if an official received it: a letter cancelled, rejected,
    failed or only rehearsed is not called sent."""
    letters = (Channel.EMAIL, Channel.FAX)
    if any(
        e.channel in letters and e.status is DeliveryStatus.DELIVERED and e.provider != SANDBOX
        for e in entries
    ):
        return _("Your letter, as it was sent:")
    return _("Your letter (it reached none of the officials):")


def _posts(service: Service, appeal: ReceiptAppeal, entries: Sequence[LogEntry]) -> dict[int, str]:
    """Each handed-off post's link, whole (delivery id → link)."""
    return {
        e.id: service.public_url
        + hand_off_link(
            service, appeal.appeal_id, e.target_id, hand_off_text(e.address, appeal.tweet)
        )
        for e in entries
        if e.status is DeliveryStatus.HANDED_OFF and appeal.tweet
    }


def _receipt_words(
    service: Service,
    job: ReceiptJob,
    appeal: ReceiptAppeal,
    entries: Sequence[LogEntry],
    about: _About,
) -> tuple[str, list[str]]:
    """The receipt, or the notice of one failure; the letter and the deletion link only to
    an address its owner confirmed."""
    values = {"title": about.title, "org": about.org}
    if job.kind == FAILURE:
        shown = [e for e in entries if e.id == job.delivery_id]
        subject = _("Not delivered: part of your appeal, %(title)s") % values
        opening = _("One of your messages could not be delivered:")
    else:
        shown = list(entries)
        subject = _("Your appeal: %(title)s") % values
        opening = _("Thank you for taking action. What happened to each message:")
        if not appeal.confirmed:  # perhaps not its owner's doing: say only what we know
            opening = (
                _(
                    "An appeal to %(title)s was sent with this email address. What happened to "
                    "each message:"
                )
                % values
            )
    posts = _posts(service, appeal, shown) if appeal.confirmed else {}
    lines = [about.hello, "", opening, "", *(_line(e, about.names, posts.get(e.id)) for e in shown),
             "", about.status]  # fmt: skip
    if appeal.confirmed:
        subject_line = _("Subject: %(subject)s") % {"subject": appeal.subject}
        lines += ["", _letter_heading(entries), "", subject_line, "", appeal.body]
        if appeal.tweet:
            lines += ["", _("Your post on X:"), appeal.tweet]
    why = (
        _(
            "You get this because you sent an appeal to %(title)s with %(org)s and asked for a "
            "receipt."
        )
        % values
    )
    if not appeal.confirmed:
        why = _("You get this because a receipt was asked for at this email address.")
        return subject, [*lines, "", "--", why, about.not_me]
    forget = _(
        "To delete your name, email address and letter from our records (the count of "
        "actions stays): %(url)s"
    ) % {"url": forget_link(service, appeal.appeal_id)}
    return subject, [*lines, "", "--", why, forget]


async def send_receipts(
    service: Service,
    sender: Sender,
    *,
    from_address: str,
    from_name: str,
    stop: asyncio.Event,
    interval: float = 1.0,
) -> None:
    """Until ``stop``: queue what is due, then send it; database trouble is waited out.
    A last round runs after ``stop`` (a drained worker's last receipts go too)."""
    since = utcnow() - dt.timedelta(days=7)
    while True:
        stopping = stop.is_set()
        try:
            since = await receipts_round(service, sender, since, from_address, from_name)
        except Exception as exc:  # the database: try again on the next round
            if lasting_problem(exc):  # not the database's moment: an error of ours, loudly
                log.error("receipts failed; trying again", error=repr(exc), exc_info=exc)
            else:
                log.warning("could not send receipts; trying again", error=repr(exc))
        if stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def receipts_round(
    service: Service, sender: Sender, since: dt.datetime, from_address: str, from_name: str
) -> dt.datetime:
    """Queue what deliveries changed since ``since`` call for, send what is due; returns
    where the next round starts."""
    started = utcnow()
    await service.store.queue_receipts(since=since - _LOOK_BACK)
    for job in await service.store.claim_receipts(limit=20, lease_seconds=LEASE_SECONDS):
        await _send_one(service, sender, job, from_address, from_name)
    return started


async def _send_one(
    service: Service, sender: Sender, job: ReceiptJob, from_address: str, from_name: str
) -> None:
    store = service.store
    appeal = await store.receipt_appeal(job.appeal_id)
    if appeal is None:  # the supporter deleted their data meanwhile
        await store.finish_receipt(job.id, status="cancelled")
        return
    entries = await store.list_deliveries(appeal_id=job.appeal_id)
    message = compose(service, job, appeal, entries, from_address, from_name)
    try:
        await sender.send_message(appeal.supporter_email, message)
    except DeliveryError as exc:
        if isinstance(exc, PermanentError) or job.attempts >= MAX_TRIES:
            await store.finish_receipt(job.id, status="failed", error=exc.message)
            return
        retry_at = utcnow() + dt.timedelta(seconds=30 * 2**job.attempts)
        await store.finish_receipt(job.id, status="queued", error=exc.message, retry_at=retry_at)
        return
    await store.finish_receipt(job.id, status="sent")
