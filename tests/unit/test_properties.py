"""Properties over generated input (hypothesis): whatever a supporter types either comes
back out of every medium exactly, or is refused with an error naming the field — never
an exception, never a header of its own."""

from __future__ import annotations

import datetime as dt
import email.policy
import io
import os
import re
import unicodedata
from email.message import EmailMessage
from email.parser import BytesParser

import pypdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.campaigns import CampaignCatalog
from dispatcher.models import Channel
from dispatcher.render.email import email_bytes
from dispatcher.render.fax import cover_text, render_fax_pdf
from dispatcher.render.fonts import fax_font
from dispatcher.render.letter import letter_text
from dispatcher.render.tweet import (
    MAX_WEIGHTED_LENGTH,
    compose_tweet,
    tweet_weight,
    weighted_length,
)
from dispatcher.service import ServiceError
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.validation import check_appeal, clean_line, clean_text
from tests.conftest import OPEN_CAMPAIGN, claimed_delivery

PARSER = BytesParser(_class=EmailMessage, policy=email.policy.default)
FROM = "appeals@dispatch.example.org"
TODAY = dt.date(2026, 3, 11)  # the fax cover's date, given rather than read off the clock
HEADERS = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Language",
]
RUNS = settings(
    # A deeper search: PROPERTY_EXAMPLES=1000 .venv/bin/pytest tests/unit/test_properties.py
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def accepted_or_refused(field: str, check: object) -> str | None:
    """The cleaned value, or None after checking the refusal names ``field``."""
    try:
        value = check()  # type: ignore[operator]
    except ServiceError as exc:
        assert exc.field == field and exc.message
        return None
    assert isinstance(value, str)
    return value


@RUNS
@given(name=st.text(max_size=80), subject=st.text(max_size=200), letter=st.text(max_size=600))
def test_any_name_subject_and_letter_make_an_email_that_parses_back_identical(
    name: str, subject: str, letter: str
) -> None:
    clean_name = accepted_or_refused(
        "supporter.name", lambda: clean_line("supporter.name", name, limit=200, required=True)
    )
    body = accepted_or_refused("message", lambda: clean_text("message", letter, limit=10_000))
    title = accepted_or_refused(
        "subject", lambda: clean_line("subject", subject, limit=200, required=True)
    )
    if clean_name is None or body is None or title is None:
        return
    claimed = claimed_delivery(supporter_name=clean_name, subject=title, body=body, reply_to=True)
    for eight_bit in (True, False):
        raw = email_bytes(claimed, from_address=FROM, from_name="UA", eight_bit=eight_bit)
        message = PARSER.parsebytes(raw)
        assert not message.defects
        assert list(message.keys()) == HEADERS  # nothing a name or subject smuggled in
        (sender,) = message["From"].addresses
        assert sender.display_name == f"{clean_name} via UA"
        assert message["Subject"] == title
        assert message.get_content().replace("\r\n", "\n") == letter_text(claimed)


# Latin, Greek and Cyrillic with their punctuation and symbols: what most letters use.
_ALPHABETIC = (*range(0x20, 0x250), *range(0x370, 0x530), *range(0x1E00, 0x1F00))
_ALPHABETIC += (*range(0x2000, 0x2070), *range(0x20A0, 0x20D0), *range(0x2100, 0x2160))


def _drawable() -> list[str]:
    """Letters, digits, punctuation and symbols of alphabetic scripts the fax font covers."""
    covered = fax_font().codepoints
    return [
        chr(cp)
        for cp in _ALPHABETIC
        if cp in covered and re.match(r"[LNPS]", unicodedata.category(chr(cp)))
    ]


@RUNS
@given(data=st.data())
def test_a_fax_pdfs_text_layer_holds_the_letter_word_for_word(data: st.DataObject) -> None:
    alphabet = st.sampled_from(_drawable())
    word = st.text(alphabet=alphabet, min_size=1, max_size=30)
    line = st.lists(word, min_size=1, max_size=12).map(" ".join)
    letter = data.draw(st.lists(line, min_size=1, max_size=40).map("\n".join))
    name = data.draw(st.lists(word, min_size=1, max_size=3).map(" ".join))
    claimed = claimed_delivery(channel=Channel.FAX, supporter_name=name, body=letter)
    pdf = render_fax_pdf(claimed, header_text="UA", today=TODAY)
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    text = " ".join(page.extract_text() for page in reader.pages)
    expected = f"{cover_text(claimed, 'UA', TODAY)}\n{claimed.subject}\n{letter_text(claimed)}"
    assert text.split() == expected.split()


@RUNS
@given(tweet=st.text(max_size=300))
def test_any_post_fits_x_or_is_refused_naming_the_field(
    catalog: CampaignCatalog, tweet: str
) -> None:
    request = AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name="Ana Lima",
        supporter_email="ana@example.org",
        channels=["twitter"],
        tweet=tweet,
    )
    valid = check_appeal(catalog, request)
    if isinstance(valid, Rejected):
        assert [(p.field, bool(p.message)) for p in valid.problems] == [("tweet", True)]
        return
    for delivery in valid.deliveries:
        post = compose_tweet(delivery.address, valid.appeal.tweet or "", "Ana Lima")
        assert weighted_length(post) <= MAX_WEIGHTED_LENGTH


# Names and posts with what could make a link or an emoji reach across the parts: dots,
# schemes, combining marks, joiners, keycaps, skin tones, CJK, letters that are emoji (ℹ).
_TRICKY = st.sampled_from(list("ab.:/@＠#$ 1é\u0301\u200d\ufe0f\u20e3🏽👍李ℹ.com-'’"))
_POSTS = [
    "Free them now",
    "Free them now https://example.org",
    "Free them now 👍",
    "释放他们 example.org",
    "Ends in a keycap 1\ufe0f\u20e3",
]


@given(
    name=st.text(_TRICKY, min_size=1, max_size=20) | st.text(min_size=1, max_size=20),
    post=st.sampled_from(_POSTS),
)
@settings(max_examples=400, deadline=None)
def test_a_posts_weight_with_the_name_weighed_apart_is_its_whole_weight(
    name: str, post: str
) -> None:
    handles = "@xjp @ChinaEmbassyUS"
    whole = weighted_length(compose_tweet(handles, post, name))
    assert tweet_weight(handles, post, name) == whole
