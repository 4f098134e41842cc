"""The face fax letters are drawn in: one TrueType face, found and loaded once per process.

``DISPATCHER_FAX__FONT`` names it. Unset, it is WenQuanYi Micro Hei from Debian's
``fonts-wqy-microhei`` (Latin, Greek, Cyrillic and Chinese in one face), else the first
face fontconfig lists for Chinese that can be embedded (TrueType outlines). Nothing but
the file system and ``fc-list`` is asked where a font is.
"""

from __future__ import annotations

import functools
import shutil
import subprocess  # fc-list, found on PATH, with fixed arguments
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from dispatcher.settings import ConfigurationError, Settings

# Faces looked for, in order, when DISPATCHER_FAX__FONT is not set: Debian's
# fonts-wqy-microhei (WenQuanYi Micro Hei: Apache-2.0, or GPL-3+ with a font embedding exception).
SYSTEM_FONTS = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),)
# A face found on the system is taken only if it has these: Chinese, and Latin letters.
_NEEDED = frozenset(map(ord, "中文释放Aa"))
_INSTALL = "install WenQuanYi Micro Hei with `apt-get install fonts-wqy-microhei`"
NO_FONT = (
    f"no font to draw faxes with was found on this server: {_INSTALL}, or set "
    "DISPATCHER_FAX__FONT to a TrueType font file (.ttf or .ttc) with Chinese (CJK) characters"
)
_INSTEAD = (
    "set DISPATCHER_FAX__FONT to a TrueType font file (.ttf or .ttc), or unset it and " + _INSTALL
)


class FaxFontError(ConfigurationError):
    """No face to draw fax letters with: one sentence naming the path, or what to install."""


@dataclass(frozen=True, eq=False)  # hashed by identity: one per font file and process
class FaxFont:
    """A face registered with reportlab under ``name``; ``codepoints``: what it can draw."""

    path: Path
    name: str
    codepoints: frozenset[int]
    # reportlab keeps a face's subsets per document; one document is built at a time.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def uncovered(self, text: str) -> list[str]:
        """Characters of ``text`` this face cannot draw (whitespace is always fine)."""
        return list(_uncovered(self, text))


@functools.lru_cache(maxsize=1024)  # a campaign's letter is checked for every supporter
def _uncovered(font: FaxFont, text: str) -> tuple[str, ...]:
    drawn = font.codepoints
    return tuple(sorted({ch for ch in set(text) if not ch.isspace() and ord(ch) not in drawn}))


_loading = threading.Lock()
_loaded: dict[Path, FaxFont] = {}


def load_font(path: Path) -> FaxFont:
    """The face in ``path`` (a .ttf, or the first face of a .ttc), read and registered with
    reportlab once per process; FaxFontError naming the path when it cannot be used."""
    with _loading:
        if path in _loaded:
            return _loaded[path]
        if not path.is_file():
            raise FaxFontError(f"the fax font {path} is not a file: {_INSTEAD}")
        try:
            face = TTFont(f"fax-font-{len(_loaded) + 1}", str(path), subfontIndex=0)
        except Exception as exc:  # reportlab raises several kinds for a file it cannot read
            raise FaxFontError(
                f"the fax font {path} cannot be embedded ({exc}): {_INSTEAD}"
            ) from None
        pdfmetrics.registerFont(face)
        font = FaxFont(path, face.fontName, frozenset(face.face.charToGlyph))
        _loaded[path] = font
        return font


def resolve_font(
    configured: Path | None, *, system: tuple[Path, ...] = SYSTEM_FONTS, fontconfig: bool = True
) -> FaxFont:
    """The ``configured`` face (whatever it covers: the intake check refuses the rest), else
    the first of ``system`` or of fontconfig's Chinese faces that has Chinese and Latin;
    FaxFontError saying what to install or set when there is none."""
    if configured is not None:
        return load_font(configured)
    for path in (*system, *(_fontconfig_chinese() if fontconfig else ())):
        try:
            font = load_font(path)
        except FaxFontError:
            continue  # not embeddable (CFF outlines, say): look further
        if font.codepoints >= _NEEDED:
            return font
    raise FaxFontError(NO_FONT)


def _fontconfig_chinese() -> list[Path]:
    """The TrueType files fontconfig lists for Chinese (none when it is not installed)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:  # fc-list itself (found on PATH), fixed arguments, no shell
        listed = subprocess.run(  # noqa: S603
            [fc_list, "--format", "%{file}\n", ":lang=zh"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    files = {line.strip() for line in listed.stdout.splitlines()}
    return [Path(name) for name in sorted(files) if name.lower().endswith((".ttf", ".ttc"))]


@functools.cache
def fax_font() -> FaxFont:
    """This process's face: DISPATCHER_FAX__FONT as the settings read it (environment,
    then .env), else the system's. Found once; while none is, each call looks again."""
    try:
        configured = Settings().fax.font
    except ValidationError as exc:  # the file went away after the process started
        first = exc.errors()[0]
        name = "DISPATCHER_" + "__".join(str(part).upper() for part in first["loc"])
        raise FaxFontError(f"setting {name} is invalid: {first['msg']}") from None
    return resolve_font(configured)
