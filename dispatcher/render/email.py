"""An appeal as a MIME email: DMARC-safe From, the supporter in Reply-To, a stable Message-ID."""

from __future__ import annotations

import email.policy
import email.utils
from email.headerregistry import Address
from email.message import EmailMessage

from dispatcher.models import ClaimedDelivery
from dispatcher.render.letter import letter_text


def message_id(delivery: ClaimedDelivery, from_address: str) -> str:
    """The same for every attempt of a delivery, so a resend is recognisable as one."""
    domain = from_address.rpartition("@")[2] or "dispatcher.invalid"
    return f"<delivery-{delivery.id}.{delivery.appeal_id}@{domain}>"


def build_email(delivery: ClaimedDelivery, *, from_address: str, from_name: str) -> EmailMessage:
    """The message to ``delivery.address``.

    We send from our own domain (a supporter's domain would fail DMARC) with the
    supporter's name in the display name and their address in Reply-To. Names were
    checked for control characters at intake; the header API encodes the rest.
    """
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = Address(
        display_name=f"{delivery.supporter_name} via {from_name}", addr_spec=from_address
    )
    message["Reply-To"] = Address(
        display_name=delivery.supporter_name, addr_spec=delivery.supporter_email
    )
    message["To"] = Address(display_name=delivery.target_name, addr_spec=delivery.address)
    message["Subject"] = delivery.subject
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(delivery, from_address)
    message.set_content(letter_text(delivery), charset="utf-8")
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = delivery.language
    return message
