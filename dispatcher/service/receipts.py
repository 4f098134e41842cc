"""The supporter's receipt, and a notice when a delivery fails for good.

Sent over the same relay as the letters, to the supporter only (never by the officials'
channels): what was delivered where, what failed and why in plain words, a copy of the
letter, the status page, and the signed link that deletes their data. A supporter who
unticked "Email me a receipt" gets neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

from dispatcher.channels.base import DeliveryError, PermanentError
from dispatcher.channels.registry import CHANNEL_LABELS
from dispatcher.i18n import _, current, speaking
from dispatcher.models import DeliveryStatus, LogEntry, utcnow
from dispatcher.service.context import Service
from dispatcher.service.forget import forget_link
from dispatcher.service.status import what_went_wrong
from dispatcher.store import lasting_problem
from dispatcher.store.receipts import FAILURE, ReceiptAppeal, ReceiptJob

log = logging.getLogger(__name__)

MAX_TRIES = 6
LEASE_SECONDS = 120.0
# Scans look this far back past the last one: a transaction stamps its changes before
# it commits, so a change may show up a little after its stamp.
_LOOK_BACK = dt.timedelta(seconds=30)


class Sender(Protocol):
    async def send_message(self, recipient: str, message: EmailMessage) -> str: ...


def _line(entry: LogEntry, names: dict[str, str]) -> str:
    values = {
        "who": names.get(entry.target_id, entry.target_id),
        "how": _(CHANNEL_LABELS.get(entry.channel, entry.channel.value)),
    }
    if entry.status is DeliveryStatus.DELIVERED:
        return _("- %(who)s, by %(how)s: delivered.") % values
    if entry.status.settled:
        why = what_went_wrong(entry.channel, entry.last_error) if entry.last_error else ""
        return (_("- %(who)s, by %(how)s: not delivered.") % values + " " + why).rstrip()
    return _("- %(who)s, by %(how)s: still on its way.") % values


def compose(
    service: Service,
    job: ReceiptJob,
    appeal: ReceiptAppeal,
    entries: Sequence[LogEntry],
    from_address: str,
    from_name: str,
) -> EmailMessage:
    """The message, in the language of the supporter's letter (English or Chinese)."""
    with speaking(appeal.language):
        subject, lines = _words(service, job, appeal, entries)
    message = EmailMessage()
    message["From"] = f"{from_name} <{from_address}>"
    message["To"] = appeal.supporter_email
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    message.set_content("\n".join(lines))
    return message


def _words(
    service: Service, job: ReceiptJob, appeal: ReceiptAppeal, entries: Sequence[LogEntry]
) -> tuple[str, list[str]]:
    language = current()
    campaign = service.catalog.get(appeal.campaign_id)
    title = campaign.title_in(language) if campaign else appeal.campaign_id
    names = {t.id: t.name_in(language) for t in campaign.targets} if campaign else {}
    if job.kind == FAILURE:
        shown = [e for e in entries if e.id == job.delivery_id]
        subject = _("Not delivered: part of your appeal, %(title)s") % {"title": title}
        opening = _("One of your messages could not be delivered:")
    else:
        shown = list(entries)
        subject = _("Your appeal: %(title)s") % {"title": title}
        opening = _("Thank you for taking action. What happened to each message:")
    lines = [
        _("Dear %(name)s,") % {"name": appeal.supporter_name},
        "",
        opening,
        "",
        *(_line(e, names) for e in shown),
        "",
        _("Follow your appeal: %(url)s") % {"url": f"{service.public_url}/a/{appeal.appeal_id}"},
        "",
        _("Your letter, as it was sent:"),
        "",
        _("Subject: %(subject)s") % {"subject": appeal.subject},
        "",
        appeal.body,
    ]
    if appeal.tweet:
        lines += ["", _("Your post on X:"), appeal.tweet]
    why = {"title": title, "org": campaign.organisation_in(language) if campaign else "—"}
    lines += [
        "",
        "--",
        _(
            "You get this because you sent an appeal to %(title)s with %(org)s and asked for "
            "a receipt."
        )
        % why,
        _(
            "To delete your name, email address and letter from our records (the count of "
            "actions stays): %(url)s"
        )
        % {"url": forget_link(service, appeal.appeal_id)},
    ]
    return subject, lines


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
                log.error("receipts failed; trying again: %r", exc, exc_info=exc)
            else:
                log.warning("could not send receipts; trying again: %r", exc)
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
