"""An appeal as a fax: a PDF with an embedded font that covers the letter's script."""

from __future__ import annotations

import datetime as dt
import functools

import phonenumbers

from dispatcher.models import ClaimedDelivery
from dispatcher.render.fonts import FaxFont, fax_font
from dispatcher.render.layout import A4, LETTER, Block, Paper, page_count, write_pdf
from dispatcher.render.letter import letter_text

# The cover's first line unless DISPATCHER_FAX__HEADER_TEXT says otherwise (one short line).
DEFAULT_HEADER_TEXT = "Urgent appeal"
# Where US Letter is the paper in the fax machines (CLDR's paperSize "US-Letter": the
# United States, Canada and Puerto Rico of the North American Numbering Plan, Mexico and
# much of Central and South America, the Philippines); A4 everywhere else.
LETTER_REGIONS = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)


@functools.lru_cache(maxsize=1024)  # a campaign's officials, for every supporter
def paper_for(fax_number: str) -> Paper:
    """The paper a fax to ``fax_number`` (E.164) is laid out on: the destination country's,
    US Letter or A4 (A4 when the country cannot be told)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(fax_number, None))
    except phonenumbers.NumberParseException:
        return A4
    return LETTER if region in LETTER_REGIONS else A4


def uncovered_characters(text: str, font: FaxFont | None = None) -> list[str]:
    """Characters of ``text`` the fax font (this process's, unless ``font`` is given)
    cannot draw; whitespace is always fine. FaxFontError when there is no font."""
    return (font or fax_font()).uncovered(text)


def cover_text(delivery: ClaimedDelivery, header_text: str, today: dt.date) -> str:
    return (
        f"{header_text}\n"
        f"To: {delivery.target_name}, fax {delivery.address}\n"
        f"From: {delivery.supporter_name}\n"
        f"Date: {today.isoformat()}\n"
        f"Reference: delivery {delivery.id}"
    )


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _blocks(top: str, subject: str, letter: str) -> list[Block]:
    return [
        Block(top, size=9, line_mm=4.5, after_mm=6),
        Block(subject, size=13, line_mm=7, after_mm=3),
        Block(letter, size=11, line_mm=5.5),
    ]


def render_fax_pdf(
    delivery: ClaimedDelivery,
    *,
    header_text: str,
    today: dt.date | None = None,
    font: FaxFont | None = None,
) -> bytes:
    """A PDF on the destination's paper (US Letter or A4, :func:`paper_for`): a cover block
    (to, from, the date: ``today``, else today's in UTC) and the letter, in ``font`` (else
    this process's fax font). CPU-bound: call it in a thread. FaxFontError when there is
    no font to draw it with."""
    top = cover_text(delivery, header_text, today or _today())
    return _render(delivery, top, font or fax_font())


def render_letter_pdf(delivery: ClaimedDelivery, address_block: str, date: dt.date) -> bytes:
    """The letter for the post, laid out as a fax is: the official's postal address and
    the date on top, then the subject and the letter. ``delivery.address``: a number of
    the official's, for the paper of their country (A4 when there is none)."""
    return _render(delivery, f"{address_block.strip()}\n\n{date.isoformat()}", fax_font())


def _render(delivery: ClaimedDelivery, top: str, font: FaxFont) -> bytes:
    blocks = _blocks(top, delivery.subject, letter_text(delivery))
    paper = paper_for(delivery.address)
    return write_pdf(font, blocks, title=delivery.subject, paper=paper)


def fax_page_count(
    delivery: ClaimedDelivery,
    *,
    header_text: str,
    today: dt.date | None = None,
    font: FaxFont | None = None,
) -> int:
    """How many pages :func:`render_fax_pdf` makes of ``delivery``: laid out by the same
    code (without drawing), so the count is the one a gateway would be sent (and charge
    for). Callers should refuse what is plainly too long first (:func:`fewest_fax_pages`)."""
    top = cover_text(delivery, header_text, today or _today())
    blocks = _blocks(top, delivery.subject, letter_text(delivery))
    return page_count(font or fax_font(), blocks, paper_for(delivery.address))


# Letter lines (5.5 mm apart) on an A4 page within 20 mm margins: no more fit (A4 is the
# taller paper, so on US Letter a body takes at least as many pages).
_LINES_PER_PAGE = int((297 - 2 * 20) // 5.5)


def fewest_fax_pages(body: str) -> int:
    """The fewest pages a letter with this body can take, from its line breaks alone
    (each is a line, whatever the font): a cheap refusal before :func:`fax_page_count`."""
    return -(-(body.count("\n") + 1) // _LINES_PER_PAGE)
