"""An appeal as a fax: a PDF with an embedded font that covers the letter's script."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
from pathlib import Path

from dispatcher.models import ClaimedDelivery
from dispatcher.render.letter import letter_text

_FONT_FAMILY = "wqy-microhei"


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


def uncovered_characters(text: str) -> list[str]:
    """Characters of ``text`` the bundled fax font cannot draw (whitespace is always fine)."""
    covered = _covered_codepoints()
    missing = {ch for ch in text if not ch.isspace() and ord(ch) not in covered}
    return sorted(missing)


def render_fax_pdf(delivery: ClaimedDelivery, *, header_text: str) -> bytes:
    """A4 PDF: a cover block (to, from, date) and the letter. CPU-bound: call it in a thread."""
    from fpdf import FPDF  # heavy; only the worker renders faxes

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_font(_FONT_FAMILY, fname=str(font_path()), collection_font_number=0)
    pdf.set_title(delivery.subject)
    pdf.set_creator("appeal-dispatcher")
    pdf.add_page()
    pdf.set_font(_FONT_FAMILY, size=9)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    cover = (
        f"{header_text}\n"
        f"To: {delivery.target_name}, fax {delivery.address}\n"
        f"From: {delivery.supporter_name}\n"
        f"Date: {today}    Reference: delivery {delivery.id}"
    )
    pdf.multi_cell(0, 4.5, text=cover)
    pdf.ln(6)
    pdf.set_font(_FONT_FAMILY, size=13)
    pdf.multi_cell(0, 7, text=delivery.subject)
    pdf.ln(3)
    pdf.set_font(_FONT_FAMILY, size=11)
    pdf.multi_cell(0, 5.5, text=letter_text(delivery))
    return bytes(pdf.output())
