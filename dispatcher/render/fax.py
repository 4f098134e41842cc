"""An appeal as a fax: a PDF with an embedded font that covers the letter's script."""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import importlib.resources
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers

from dispatcher.models import ClaimedDelivery
from dispatcher.render.letter import letter_text
from dispatcher.render.pdf import A4, LETTER, MM, Block, Face, Paper, load_face, write_pdf

if TYPE_CHECKING:
    from fpdf import FPDF

_FONT_FAMILY = "wqy-microhei"
# The cover's first line unless DISPATCHER_FAX__HEADER_TEXT says otherwise (one short line).
DEFAULT_HEADER_TEXT = "Urgent appeal"
# Latin, Greek, Cyrillic and common punctuation/symbols: what most letters use.
_ALPHABETIC_RANGES = (
    (0x0020, 0x024F),
    (0x0370, 0x03FF),
    (0x0400, 0x052F),
    (0x1E00, 0x1EFF),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2100, 0x215F),
)
_subset_lock = threading.Lock()
# Where US Letter is the paper in the fax machines (CLDR's paperSize "US-Letter": the
# United States, Canada and Puerto Rico of the North American Numbering Plan, Mexico and
# much of Central and South America, the Philippines); A4 everywhere else.
LETTER_REGIONS = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)


def paper_for(fax_number: str) -> Paper:
    """The paper a fax to ``fax_number`` (E.164) is laid out on: the destination country's,
    US Letter or A4 (A4 when the country cannot be told)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(fax_number, None))
    except phonenumbers.NumberParseException:
        return A4
    return LETTER if region in LETTER_REGIONS else A4


@functools.cache
def font_path() -> Path:
    """WenQuanYi Micro Hei: Latin, Greek, Cyrillic and CJK (Chinese) in one face."""
    resource = importlib.resources.files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc"
    return Path(str(resource))


@functools.cache
def _covered_codepoints() -> frozenset[int]:
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(font_path()), lazy=True)
    try:
        return frozenset(collection.fonts[0].getBestCmap())
    finally:
        collection.close()


def _alphabetic_font_path() -> Path:
    """The same face cut down to its alphabetic scripts, built once per process.

    Loading the full 34,000-glyph CJK face costs ~0.25 s of CPU per PDF; the cut-down
    face loads in a few milliseconds, and most letters need nothing else.
    """
    with _subset_lock:
        return _build_alphabetic_font()


@functools.cache
def _build_alphabetic_font() -> Path:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path()), fontNumber=0)
    options = subset.Options()
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.drop_tables += ["FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(_alphabetic_codepoints()))
    subsetter.subset(font)
    handle, name = tempfile.mkstemp(prefix="dispatcher-fax-font-", suffix=".ttf")
    os.close(handle)
    font.save(name)
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return Path(name)


@functools.cache
def _alphabetic_codepoints() -> frozenset[int]:
    covered = _covered_codepoints()
    return frozenset(
        cp for start, end in _ALPHABETIC_RANGES for cp in range(start, end + 1) if cp in covered
    )


def alphabetic_face() -> Face:
    """The alphabetic cut of the face, ready for the letter writer (once per process)."""
    return load_face(_alphabetic_font_path())


def _font_for(text: str) -> Path:
    if {ord(ch) for ch in text if not ch.isspace()} <= _alphabetic_codepoints():
        return _alphabetic_font_path()
    return font_path()


def uncovered_characters(text: str) -> list[str]:
    """Characters of ``text`` the bundled fax font cannot draw (whitespace is always fine)."""
    covered = _covered_codepoints()
    missing = {ch for ch in text if not ch.isspace() and ord(ch) not in covered}
    return sorted(missing)


def cover_text(delivery: ClaimedDelivery, header_text: str) -> str:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return (
        f"{header_text}\n"
        f"To: {delivery.target_name}, fax {delivery.address}\n"
        f"From: {delivery.supporter_name}\n"
        f"Date: {today}\n"
        f"Reference: delivery {delivery.id}"
    )


def _blocks(cover: str, subject: str, letter: str) -> list[Block]:
    return [
        Block(cover, size=9, line_mm=4.5, after_mm=6),
        Block(subject, size=13, line_mm=7, after_mm=3),
        Block(letter, size=11, line_mm=5.5),
    ]


def render_fax_pdf(delivery: ClaimedDelivery, *, header_text: str) -> bytes:
    """A PDF on the destination's paper (US Letter or A4, :func:`paper_for`): a cover block
    (to, from, date) and the letter. CPU-bound: call it in a thread.

    Text the alphabetic face covers (most letters) is set by our own small writer, in a
    millisecond or two; anything else (Chinese) by fpdf2 with the full face, subset per
    document.
    """
    return _render(delivery, cover_text(delivery, header_text))


def render_letter_pdf(delivery: ClaimedDelivery, address_block: str, date: dt.date) -> bytes:
    """The letter for the post, laid out as a fax is: the official's postal address and
    the date on top, then the subject and the letter. ``delivery.address``: a number of
    the official's, for the paper of their country (A4 when there is none)."""
    return _render(delivery, f"{address_block.strip()}\n\n{date.isoformat()}")


def _render(delivery: ClaimedDelivery, top: str) -> bytes:
    letter = letter_text(delivery)
    if _font_for(top + delivery.subject + letter) != font_path():
        blocks = _blocks(top, delivery.subject, letter)
        paper = paper_for(delivery.address)
        return write_pdf(alphabetic_face(), blocks, title=delivery.subject, paper=paper)
    return bytes(_fpdf_document(delivery, top, letter).output())


def fax_page_count(delivery: ClaimedDelivery, *, header_text: str) -> int:
    """How many pages :func:`render_fax_pdf` makes of ``delivery``: laid out by the same
    writer, so the count is the one a gateway would be sent (and charge for).

    A few milliseconds for most letters; a letter needing the full CJK face costs fpdf2's
    layout (~0.2 s), so callers should refuse what is plainly too long first
    (:func:`fewest_fax_pages`).
    """
    cover = cover_text(delivery, header_text)
    letter = letter_text(delivery)
    if _font_for(cover + delivery.subject + letter) != font_path():
        blocks = _blocks(cover, delivery.subject, letter)
        paper = paper_for(delivery.address)
        pdf = write_pdf(alphabetic_face(), blocks, title=delivery.subject, paper=paper)
        found = _PAGE_COUNT.search(pdf)
        assert found is not None  # write_pdf always writes its page tree
        return int(found.group(1))
    document = _fpdf_document(delivery, cover, letter)
    try:
        return int(document.page)
    finally:
        for font in document.fonts.values():  # output() would close them; nothing is output
            close = getattr(font, "close", None)
            if close is not None:
                close()


# Letter lines (5.5 mm apart) on an A4 page within 20 mm margins: no more fit (A4 is the
# taller paper, so on US Letter a body takes at least as many pages).
_LINES_PER_PAGE = int((297 - 2 * 20) // 5.5)
_PAGE_COUNT = re.compile(rb"/Type /Pages /Kids \[[^\]]*\] /Count (\d+)")


def fewest_fax_pages(body: str) -> int:
    """The fewest pages a letter with this body can take, from its line breaks alone
    (each is a line, whatever the font): a cheap refusal before :func:`fax_page_count`."""
    return -(-(body.count("\n") + 1) // _LINES_PER_PAGE)


def _fpdf_document(delivery: ClaimedDelivery, cover: str, letter: str) -> FPDF:
    from fpdf import FPDF  # heavy; only the worker renders faxes, and rarely this way

    width, height = paper_for(delivery.address)
    # fpdf2 takes (width, height) in its unit: millimetres here.
    pdf = FPDF(format=(width / MM, height / MM))
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_font(_FONT_FAMILY, fname=str(font_path()), collection_font_number=0)
    pdf.set_title(delivery.subject)
    pdf.set_creator("appeal-dispatcher")
    pdf.add_page()
    pdf.set_font(_FONT_FAMILY, size=9)
    pdf.multi_cell(0, 4.5, text=cover)
    pdf.ln(6)
    pdf.set_font(_FONT_FAMILY, size=13)
    pdf.multi_cell(0, 7, text=delivery.subject)
    pdf.ln(3)
    pdf.set_font(_FONT_FAMILY, size=11)
    pdf.multi_cell(0, 5.5, text=letter)
    return pdf
