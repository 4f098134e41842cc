"""Letters set in lines and pages, and drawn as a PDF by reportlab.

Lines break at spaces in alphabetic scripts and between any two characters of Chinese,
Japanese or Korean, except before closing punctuation (，。）…) and after opening
punctuation (（“…), which stay with the character beside them. A word wider than a line
is cut. Every line break in the text is kept; runs of spaces count as one.

One face draws every script (the fax font: :mod:`dispatcher.render.fonts`), except the
curly quotation marks ‘ ’ “ ”: a CJK face sets them an em wide, as Chinese wants them,
which leaves a gap in "People’s". In a word without CJK characters they are drawn in
the standard Helvetica face instead.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from dispatcher.render.fonts import FaxFont

MM = 72 / 25.4  # points per millimetre

Paper = tuple[float, float]  # width, height in points
A4: Paper = (210 * MM, 297 * MM)
LETTER: Paper = (8.5 * 72, 11 * 72)  # US Letter, 215.9 × 279.4 mm
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_MM = 20

# Ideographs, kana, Hangul and their punctuation and full-width forms: a line may break
# before and after each of these characters.
_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    (0x3200, 0x4DBF),  # enclosed CJK, CJK compatibility, extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x3FFFF),  # supplementary ideographic planes
)
# Never at the start of a line (closing punctuation, stops, iteration marks) ...
_NO_LINE_START = frozenset(
    "!%),.:;?]}°’”‰、。〉》」』】〕〗〙〛〞！％），．：；？］｝～…‥・ー々ゝゞ"
)
# ... and never at the end of one (opening punctuation).
_NO_LINE_END = frozenset("([{‘“〈《「『【〔〖〘〚〝（［｛")
LATIN_QUOTES_FACE = "Helvetica"  # one of the PDF standard faces: never embedded
_LATIN_QUOTES = frozenset("‘’“”")


@dataclass(frozen=True, slots=True)
class Block:
    """Text set at one size: ``line_mm`` apart, then ``after_mm`` of space."""

    text: str
    size: float
    line_mm: float
    after_mm: float = 0.0


@dataclass(frozen=True, slots=True)
class Line:
    """One line as drawn: its text at ``size`` points, its baseline at ``x``, ``y``."""

    text: str
    size: float
    x: float
    y: float


_FIRST_CJK = min(start for start, _ in _CJK_RANGES)
_FIRST_CJK_CHAR = chr(_FIRST_CJK)


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    # Latin, Greek and Cyrillic come before every range: one comparison for them.
    return code >= _FIRST_CJK and any(start <= code <= end for start, end in _CJK_RANGES)


def wrap(font: FaxFont, text: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points at ``size``."""
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        lines += _wrap_paragraph(font, paragraph, size, width)
    return lines


def pieces(paragraph: str) -> list[str]:
    """``paragraph`` cut where a line may break: " " for a run of spaces (none at the
    start), alphabetic words whole, each CJK character alone with the punctuation that
    must stay beside it."""
    if not paragraph or max(paragraph) < _FIRST_CJK_CHAR:
        return _words(paragraph)
    out: list[str] = []
    current, previous = "", ""
    for ch in paragraph:
        if ch.isspace():
            if current:
                out.append(current)
                current = ""
            if out and out[-1] != " ":
                out.append(" ")
            previous = " "
            continue
        if current and _may_break(previous, ch):
            out.append(current)
            current = ""
        current += ch
        previous = ch
    if current:
        out.append(current)
    return out


def _words(paragraph: str) -> list[str]:
    """:func:`pieces` of a paragraph without CJK characters: its words, a " " after each
    but the last (and after the last too when the paragraph ends in a space)."""
    out: list[str] = []
    for word in paragraph.split():
        out += (word, " ")
    if out and not paragraph[-1].isspace():
        out.pop()
    return out


def runs(font: FaxFont, line: str) -> list[tuple[str, str]]:
    """``line`` as (text, face name) runs: the fax font's, but Helvetica for a curly
    quotation mark in a word without CJK characters."""
    return list(_runs(font, line))


@functools.lru_cache(maxsize=8192)
def _runs(font: FaxFont, line: str) -> tuple[tuple[str, str], ...]:
    """:func:`runs`, cached: a campaign's letter is the same lines for every supporter,
    and finding the runs took half the time of drawing a fax."""
    out: list[tuple[str, str]] = []
    for piece in pieces(line):
        latin = bool(_LATIN_QUOTES.intersection(piece)) and not any(map(is_cjk, piece))
        for ch in piece:
            face = LATIN_QUOTES_FACE if latin and ch in _LATIN_QUOTES else font.name
            if out and out[-1][1] == face:
                out[-1] = (out[-1][0] + ch, face)
            else:
                out.append((ch, face))
    return tuple(out)


@functools.lru_cache(maxsize=8192)  # words recur: a campaign's letter, "To:", common names
def line_width(font: FaxFont, line: str, size: float) -> float:
    """Width of ``line`` in points at ``size``, as :func:`write_pdf` draws it."""
    return sum(float(pdfmetrics.stringWidth(text, face, size)) for text, face in _runs(font, line))


def _may_break(before: str, after: str) -> bool:
    if after in _NO_LINE_START or before in _NO_LINE_END:
        return False
    return is_cjk(before) or is_cjk(after)


@functools.lru_cache(maxsize=4096)
def _wrap_paragraph(font: FaxFont, paragraph: str, size: float, width: float) -> tuple[str, ...]:
    """One paragraph set in lines (cached: a campaign's letter is the same paragraphs for
    every supporter; only the salutation and the signature differ)."""
    lines: list[str] = []
    line, used, gap = "", 0.0, False
    space = float(pdfmetrics.stringWidth(" ", font.name, size))
    for piece in pieces(paragraph):
        if piece == " ":
            gap = bool(line)
            continue
        piece_width = line_width(font, piece, size)
        joined = used + (space if gap else 0.0) + piece_width
        if line and joined <= width:
            line, used = line + (" " if gap else "") + piece, joined
        else:
            if line:
                lines.append(line)
            while piece_width > width:  # wider than a line on its own: cut it
                cut = _fitting_prefix(font, piece, size, width)
                lines.append(piece[:cut])
                piece = piece[cut:]
                piece_width = line_width(font, piece, size)
            line, used = piece, piece_width
        gap = False
    lines.append(line)
    return tuple(lines)


def _fitting_prefix(font: FaxFont, word: str, size: float, width: float) -> int:
    """How many characters of ``word`` fit in ``width`` (one at least)."""
    fits, over = 1, len(word)  # a prefix of ``over`` characters does not fit
    while over - fits > 1:
        middle = (fits + over) // 2
        if line_width(font, word[:middle], size) <= width:
            fits = middle
        else:
            over = middle
    return fits


def lay_out(font: FaxFont, blocks: list[Block], paper: Paper) -> list[list[Line]]:
    """Each page's lines: ``blocks`` one after another within the margins of ``paper``,
    a new page when one is full."""
    margin = MARGIN_MM * MM
    height = paper[1]
    pages: list[list[Line]] = [[]]
    for page, y, step, block, text in _placed(font, blocks, paper):
        while page >= len(pages):
            pages.append([])
        baseline = height - (y + step / 2 + block.size * 0.35)
        pages[-1].append(Line(text, block.size, margin, baseline))
    return pages


def page_count(font: FaxFont, blocks: list[Block], paper: Paper) -> int:
    """``len(lay_out(font, blocks, paper))``, without making the lines (the same steps as
    :func:`_placed`, counted)."""
    margin = MARGIN_MM * MM
    width, height = paper
    page, y = 0, margin
    for block in blocks:
        step = block.line_mm * MM
        for _ in wrap(font, block.text, block.size, width - 2 * margin):
            if y + step > height - margin:
                page, y = page + 1, margin
            y += step
        y += block.after_mm * MM
    return page + 1


def _placed(
    font: FaxFont, blocks: list[Block], paper: Paper
) -> Iterator[tuple[int, float, float, Block, str]]:
    """Each line of ``blocks``: its page, its top (points from the top of the page), the
    step to the next line, its block and its text."""
    margin = MARGIN_MM * MM
    width, height = paper
    page, y = 0, margin
    for block in blocks:
        step = block.line_mm * MM
        for text in wrap(font, block.text, block.size, width - 2 * margin):
            if y + step > height - margin:
                page, y = page + 1, margin
            yield page, y, step, block, text
            y += step
        y += block.after_mm * MM


def write_pdf(font: FaxFont, blocks: list[Block], *, title: str, paper: Paper) -> bytes:
    """A PDF of ``blocks`` in ``font`` on ``paper`` (the face embedded, subset to the
    characters used, with the map back to Unicode that keeps the text searchable)."""
    pages = lay_out(font, blocks, paper)
    buffer = io.BytesIO()
    with font.lock:
        canvas = Canvas(buffer, pagesize=paper, pageCompression=1)
        canvas.setTitle(title)
        canvas.setCreator("appeal-dispatcher")
        for lines in pages:
            for line in (line for line in lines if line.text):
                text = canvas.beginText(line.x, line.y)
                for run, face in _runs(font, line.text):
                    text.setFont(face, line.size)
                    text.textOut(run)
                canvas.drawText(text)
            canvas.showPage()
        canvas.save()
    return buffer.getvalue()
