"""An appeal as a MIME email: DMARC-safe From, the supporter in Reply-To only when they
confirmed they want officials to have their address, a stable Message-ID.

The message is written straight to its wire form. The standard library's header objects
parse every address they are given back into tokens, which made building a message cost
more than sending it; here each header is encoded once (RFC 2047 encoded words for
non-ASCII names and subjects, quoting for specials) and the result is checked by parsing
it back in the tests, as a mail client would.
"""

from __future__ import annotations

import base64
import email.policy
import email.utils
import re
from email.header import Header
from email.message import EmailMessage
from email.parser import BytesParser

from dispatcher.models import ClaimedDelivery
from dispatcher.render.letter import letter_text

# SMTP's hard limit is 998 octets a line; RFC 5322 recommends 78.
_MAX_LINE = 998
_ASCII_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_PARSER = BytesParser(_class=EmailMessage, policy=email.policy.default)


def message_id(delivery: ClaimedDelivery, from_address: str) -> str:
    """The same for every attempt of a delivery, so a resend is recognisable as one."""
    domain = from_address.rpartition("@")[2] or "dispatcher.invalid"
    return f"<delivery-{delivery.id}.{delivery.appeal_id}@{domain}>"


def _no_line_breaks(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header value {value[:40]!r} contains CR or LF")
    return value


def _address(name: str, addr_spec: str) -> str:
    """``"Display Name" <addr>`` with the name quoted or encoded as needed."""
    _no_line_breaks(addr_spec)
    formatted = email.utils.formataddr((_no_line_breaks(name), addr_spec), charset="utf-8")
    return formatted.replace("\n", "\r\n")  # a long encoded name is folded


def _unstructured(value: str, header_name: str) -> str:
    _no_line_breaks(value)
    if _ASCII_PRINTABLE.match(value) and len(value) + len(header_name) + 2 <= 78:
        return value
    return Header(value, "utf-8", header_name=header_name).encode(linesep="\r\n")


def _body(text: str, *, eight_bit: bool) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body with CRLF line ends)."""
    lines = text.replace("\r\n", "\n").split("\n")
    raw = "\r\n".join(lines).encode("utf-8")
    fits = all(len(line.encode("utf-8")) <= _MAX_LINE for line in lines)
    if fits and raw.isascii():
        return "7bit", raw
    if fits and eight_bit:
        return "8bit", raw
    return "base64", base64.encodebytes(raw).replace(b"\n", b"\r\n")


def email_bytes(
    delivery: ClaimedDelivery, *, from_address: str, from_name: str, eight_bit: bool = True
) -> bytes:
    """The message to ``delivery.address``, ready for SMTP DATA.

    We send from our own domain (a supporter's domain would fail DMARC) with the
    supporter's name in the display name, and their address in Reply-To only when they
    asked for it and confirmed it (``delivery.reply_to``). Names were
    checked for control characters at intake; a line break here is refused (ValueError)
    rather than becoming a header of its own. Without ``eight_bit`` (a relay lacking
    8BITMIME), a non-ASCII body is sent base64-encoded.
    """
    encoding, body = _body(letter_text(delivery), eight_bit=eight_bit)
    headers = [
        ("From", _address(f"{delivery.supporter_name} via {from_name}", from_address)),
        # The supporter's address only by their choice, confirmed by a link sent to it.
        *(
            [("Reply-To", _address(delivery.supporter_name, delivery.supporter_email))]
            if delivery.reply_to
            else []
        ),
        ("To", _address(delivery.target_name, delivery.address)),
        ("Subject", _unstructured(delivery.subject, "Subject")),
        ("Date", email.utils.formatdate(localtime=False, usegmt=True)),
        ("Message-ID", message_id(delivery, from_address)),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", encoding),
        ("Content-Language", _no_line_breaks(delivery.language)),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("ascii") + b"\r\n" + body


def build_email(delivery: ClaimedDelivery, *, from_address: str, from_name: str) -> EmailMessage:
    """The message as a mail client reads it (parsed back from :func:`email_bytes`)."""
    return _PARSER.parsebytes(email_bytes(delivery, from_address=from_address, from_name=from_name))
