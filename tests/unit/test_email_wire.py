"""The email's wire form, parsed back as a mail client would: every name, the subject and
the letter come back exactly, with and without 8BITMIME, and no line is over 998 octets."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from dispatcher.render.email import email_bytes
from dispatcher.render.letter import letter_text
from tests.conftest import claimed_delivery as delivery

PARSER = BytesParser(_class=EmailMessage, policy=email.policy.default)
FROM = "appeals@dispatch.example.org"

CASES = {
    "plain": {},
    "quoted specials": {"supporter_name": 'Seán O\'Brien, Jr. "Ed" (Amnesty)'},
    "long chinese name": {"supporter_name": "王小明" * 30, "target_name": "驻美国大使馆 崔天凯"},
    "long subject": {"subject": "Release everyone arbitrarily detained in Xinjiang " * 3},
    "chinese subject": {"subject": "请释放在新疆被任意拘押的人，并告知其家属他们的下落" * 2},
    "a line over 998 octets": {"body": "释" * 400},
    "mixed scripts": {"supporter_name": "Ана Лима 🌍", "body": "Привет\n\n¡Hola! 你好"},
    "arabic name and subject": {
        "supporter_name": "أحمد منصور",
        "target_name": "سفارة جمهورية الصين الشعبية",
        "subject": "أطلقوا سراح جميع المحتجزين تعسفياً في شينجيانغ",
    },
    "hebrew name": {"supporter_name": "דניאל כהן", "subject": "שחררו את העצורים"},
    "right-to-left beside left-to-right": {"supporter_name": "Ana Lima (أحمد) 2024"},
    "emoji name and subject": {
        "supporter_name": "Ana 🌍✊🏽 Lima 👩‍👩‍👧",
        "subject": "Free them 🕊️ now 🙏",
    },
    "long emoji and cjk name": {"supporter_name": "王小明🌸" * 25},
}


@pytest.mark.parametrize("eight_bit", [True, False], ids=["8bitmime", "7bit"])
@pytest.mark.parametrize("overrides", list(CASES.values()), ids=list(CASES))
def test_the_message_parses_back_identical(overrides: dict[str, str], eight_bit: bool) -> None:
    claimed = delivery(reply_to=True, **overrides)
    raw = email_bytes(
        claimed, from_address=FROM, from_name="Appeal Dispatcher", eight_bit=eight_bit
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    if not eight_bit:
        assert raw.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # names and subjects travel as RFC 2047 encoded words
    if not f"{claimed.supporter_name}{claimed.subject}".isascii():
        assert b"=?utf-8?" in head
    message = PARSER.parsebytes(raw)
    assert not message.defects
    (sender,) = message["From"].addresses
    assert sender.display_name == f"{claimed.supporter_name} via Appeal Dispatcher"
    assert sender.addr_spec == FROM
    (reply_to,) = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (
        claimed.supporter_name,
        claimed.supporter_email,
    )
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (claimed.target_name, claimed.address)
    assert message["Subject"] == claimed.subject
    assert message.get_content().replace("\r\n", "\n") == letter_text(claimed)


def test_the_supporters_address_goes_only_where_they_confirmed_it() -> None:
    """Reply-To only once its owner chose it and followed the link sent to it; otherwise
    the address is nowhere in what the official receives."""
    claimed = delivery(supporter_email="ana.private@example.org")
    raw = email_bytes(claimed, from_address=FROM, from_name="Appeal Dispatcher")
    assert b"ana.private" not in raw
    assert PARSER.parsebytes(raw)["Reply-To"] is None
    chosen = email_bytes(
        delivery(supporter_email="ana.private@example.org", reply_to=True),
        from_address=FROM,
        from_name="Appeal Dispatcher",
    )
    assert str(PARSER.parsebytes(chosen)["Reply-To"]) == "Ana Lima <ana.private@example.org>"
