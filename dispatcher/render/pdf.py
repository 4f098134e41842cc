"""A small PDF writer for letters in one embedded TrueType face: text only, wrapped, on
A4 or US Letter paper.

General PDF libraries lay text out by measuring it again for every candidate line and
subset the font for every document: about 70 ms of CPU per one-page letter. A letter
needs neither. Here the face is read once per process: its glyph ids and advance widths
give the line breaks with dictionary look-ups, and everything that is the same in every
document (the embedded font, its widths, the map back to Unicode that keeps the text
layer searchable) is written once and copied into each document as bytes.

Text is drawn as glyph ids (``Identity-H``), so no character needs escaping. The face
must cover every character (the caller checks: see ``render.fax``).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MM = 72 / 25.4  # points per millimetre

Paper = tuple[float, float]  # width, height in points
A4: Paper = (210 * MM, 297 * MM)
LETTER: Paper = (8.5 * 72, 11 * 72)  # US Letter, 215.9 × 279.4 mm
PAGE_WIDTH, PAGE_HEIGHT = A4
# Objects every document shares, at fixed numbers; pages follow from FIRST_PAGE_OBJECT.
_CATALOG, _PAGES, _FONT, _CID_FONT, _TO_UNICODE, _DESCRIPTOR, _FONT_FILE, _INFO = range(1, 9)
FIRST_PAGE_OBJECT = 9
# Tables a PDF viewer uses from an embedded TrueType face (hinting and layout dropped).
_KEPT_TABLES = {"head", "hhea", "maxp", "hmtx", "loca", "glyf", "cmap", "OS/2", "post", "name"}


@dataclass(frozen=True, slots=True)
class Block:
    """Text set at one size: ``line_mm`` apart, then ``after_mm`` of space."""

    text: str
    size: float
    line_mm: float
    after_mm: float = 0.0


@dataclass(frozen=True, eq=False)  # hashed by identity: one per face file and process
class Face:
    """One TrueType face, ready to draw with: per character its glyph id and advance
    (thousandths of the font size), and the objects every document embeds unchanged."""

    name: str
    glyphs: dict[str, int]
    advances: dict[str, float]
    shared_objects: bytes  # objects _FONT to _FONT_FILE, written out
    shared_offsets: tuple[int, ...]  # where each starts within shared_objects

    def width(self, text: str, size: float) -> float:
        """Width of ``text`` in points at ``size``."""
        return sum(map(self.advances.__getitem__, text)) * size / 1000


@functools.cache
def load_face(path: Path) -> Face:
    """Read ``path`` once per process (a face made for this: few thousand glyphs at most)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(path))
    for tag in set(font.keys()) - _KEPT_TABLES - {"GlyphOrder"}:
        del font[tag]
    units = font["head"].unitsPerEm
    hmtx = font["hmtx"]
    glyphs: dict[str, int] = {}
    advances: dict[str, float] = {}
    for codepoint, glyph_name in font.getBestCmap().items():
        if codepoint > 0xFFFF:
            continue  # drawn as two-byte ids; a letter's alphabetic text never needs more
        glyphs[chr(codepoint)] = font.getGlyphID(glyph_name)
        advances[chr(codepoint)] = hmtx[glyph_name][0] * 1000 / units
    name = "".join(ch for ch in font["name"].getDebugName(6) or "Face" if ch.isalnum())
    buffer = io.BytesIO()
    font.save(buffer)
    objects, offsets = _shared_objects(font, name, glyphs, advances, buffer.getvalue())
    return Face(name, glyphs, advances, objects, offsets)


def _shared_objects(
    font: Any, name: str, glyphs: dict[str, int], advances: dict[str, float], data: bytes
) -> tuple[bytes, tuple[int, ...]]:
    head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
    scale = 1000 / head.unitsPerEm
    widths = " ".join(
        f"{gid} [{round(advances[ch])}]" for ch, gid in sorted(glyphs.items(), key=lambda i: i[1])
    )
    bbox = " ".join(str(round(v * scale)) for v in (head.xMin, head.yMin, head.xMax, head.yMax))
    cap_height = round(getattr(os2, "sCapHeight", 0) * scale) or round(hhea.ascent * scale)
    to_unicode = _to_unicode_cmap(glyphs)
    packed = zlib.compress(data, 6)
    bodies = {
        _FONT: f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
        f"/DescendantFonts [{_CID_FONT} 0 R] /ToUnicode {_TO_UNICODE} 0 R >>".encode(),
        _CID_FONT: f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        f"/FontDescriptor {_DESCRIPTOR} 0 R /CIDToGIDMap /Identity /W [{widths}] >>".encode(),
        _TO_UNICODE: _stream(to_unicode),
        _DESCRIPTOR: f"<< /Type /FontDescriptor /FontName /{name} /Flags 32 /FontBBox [{bbox}] "
        f"/ItalicAngle 0 /Ascent {round(hhea.ascent * scale)} "
        f"/Descent {round(hhea.descent * scale)} /CapHeight {cap_height} /StemV 80 "
        f"/FontFile2 {_FONT_FILE} 0 R >>".encode(),
        _FONT_FILE: _stream(packed, f"/Length1 {len(data)} /Filter /FlateDecode"),
    }
    out, offsets = io.BytesIO(), []
    for number, body in bodies.items():
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    return out.getvalue(), tuple(offsets)


def _to_unicode_cmap(glyphs: dict[str, int]) -> bytes:
    """The map from glyph ids back to characters: what text extraction and search read."""
    # One character per glyph (several characters may share one glyph: keep the lowest).
    first: dict[int, str] = {}
    for ch, gid in sorted(glyphs.items()):
        first.setdefault(gid, ch)
    unique = sorted(first.items())
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        "1 begincodespacerange <0000> <FFFF> endcodespacerange",
    ]
    for start in range(0, len(unique), 100):
        chunk = unique[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines += [f"<{gid:04X}> <{ord(ch):04X}>" for gid, ch in chunk]
        lines.append("endbfchar")
    lines += ["endcmap CMapName currentdict /CMap defineresource pop end end"]
    return "\n".join(lines).encode("ascii")


def _stream(data: bytes, extra: str = "") -> bytes:
    header = f"<< /Length {len(data)}{' ' + extra if extra else ''} >>\nstream\n".encode()
    return header + data + b"\nendstream"


def wrap(face: Face, text: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points: at spaces where it can,
    inside a word only when the word alone is wider than a line. Runs of spaces count as
    one; every line break in ``text`` is kept."""
    return [line for line, _ in _set(face, text, size, width)]


def _set(face: Face, text: str, size: float, width: float) -> list[tuple[str, bytes]]:
    """Each line of ``text`` and its glyph ids, hex-encoded as the content stream wants."""
    lines: list[tuple[str, bytes]] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        lines += _set_paragraph(face, paragraph, size, width)
    return lines


@functools.lru_cache(maxsize=4096)
def _set_paragraph(face: Face, paragraph: str, size: float, width: float) -> tuple[Any, ...]:
    """One paragraph set in lines (cached: a campaign's letter is the same paragraphs for
    every supporter; only the salutation and the signature differ)."""
    lines: list[str] = []
    space = face.width(" ", size)
    line, line_width = "", 0.0
    for word in paragraph.split():
        word_width = face.width(word, size)
        if line and line_width + space + word_width <= width:
            line, line_width = f"{line} {word}", line_width + space + word_width
            continue
        if line:
            lines.append(line)
        while word_width > width:  # a word longer than a line: cut it
            cut = _fitting_prefix(face, word, size, width)
            lines.append(word[:cut])
            word = word[cut:]
            word_width = face.width(word, size)
        line, line_width = word, word_width
    lines.append(line)
    glyphs = face.glyphs
    return tuple(
        (line, "".join(f"{glyphs[ch]:04X}" for ch in line).encode("ascii")) for line in lines
    )


def _fitting_prefix(face: Face, word: str, size: float, width: float) -> int:
    used = 0.0
    for n, ch in enumerate(word):
        used += face.advances[ch] * size / 1000
        if used > width:
            return max(1, n)
    return len(word)


def write_pdf(
    face: Face, blocks: list[Block], *, title: str, margin_mm: float = 20, paper: Paper = A4
) -> bytes:
    """A document of ``blocks`` in ``face`` on ``paper``, starting a new page when one is
    full."""
    margin = margin_mm * MM
    width, height = paper
    usable = width - 2 * margin
    pages: list[list[bytes]] = [[]]
    y = margin  # from the top of the page, in points
    for block in blocks:
        step = block.line_mm * MM
        for _, ids in _set(face, block.text, block.size, usable):
            if y + step > height - margin:
                pages.append([])
                y = margin
            baseline = height - (y + step / 2 + block.size * 0.35)
            pages[-1].append(
                b"BT /F1 %.2f Tf %.2f %.2f Td <%s> Tj ET" % (block.size, margin, baseline, ids)
            )
            y += step
        y += block.after_mm * MM
    return _assemble(face, [b"\n".join(lines) for lines in pages], title, paper)


def _assemble(face: Face, contents: list[bytes], title: str, paper: Paper) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}

    def put(number: int, body: bytes) -> None:
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    page_numbers = [FIRST_PAGE_OBJECT + 2 * n for n in range(len(contents))]
    put(_CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % _PAGES)
    kids = " ".join(f"{n} 0 R" for n in page_numbers).encode()
    put(_PAGES, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(contents)))
    start = out.tell()
    out.write(face.shared_objects)
    for number, offset in zip(range(_FONT, _FONT_FILE + 1), face.shared_offsets, strict=True):
        offsets[number] = start + offset
    stamp = dt.datetime.now(dt.UTC).strftime("D:%Y%m%d%H%M%SZ")
    title_hex = title.encode("utf-16-be").hex().upper().encode()
    put(
        _INFO,
        b"<< /Title <FEFF%s> /Creator (appeal-dispatcher) /Producer (appeal-dispatcher) "
        b"/CreationDate (%s) >>" % (title_hex, stamp.encode()),
    )
    for number, content in zip(page_numbers, contents, strict=True):
        put(
            number,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
            % (_PAGES, *paper, _FONT, number + 1),
        )
        put(number + 1, _stream(zlib.compress(content, 6), "/Filter /FlateDecode"))
    xref = out.tell()
    count = max(offsets) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
    for number in range(1, count):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (count, _CATALOG, _INFO, xref)
    )
    return out.getvalue()
