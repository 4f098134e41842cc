"""What a supporter's own text may contain: one line or several, no controls, nothing
invisible that could disguise it, and for a name nothing X or a mail program would turn
into something else (a mention, a tag, a link, an encoded word)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from dispatcher.service.errors import invalid

MAX_NAME_CHARS = 200
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Co", "Zl", "Zp"}  # controls, surrogates, line breaks
# Invisible characters that reorder text (bidi embeddings, overrides, isolates and marks)
# or hide inside it (zero-width): they can make a From line or a post read otherwise than
# it shows. Names refuse them all; letters keep the zero-width joiners that Persian,
# Indic scripts and emoji need.
_BIDI_CONTROLS = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}
_JOINERS = {0x200C, 0x200D}
_ZERO_WIDTH = {0x200B, 0x2060, 0xFEFF, 0x180E, *_JOINERS}
# Characters that show nothing, or nothing of their own, beyond the categories above:
# format characters (category Cf: soft hyphen, invisible operators, deprecated format
# controls, interlinear annotation, musical formatting, tags, shorthand format controls)
# and the default-ignorable letters and marks that look like a blank or like nothing
# (Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors, the
# combining grapheme joiner, the blank braille pattern). A name made of them signs as
# nobody, or hides what it says.
_INVISIBLE_IN_NAMES = {
    0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, *range(0x180B, 0x1810), 0x2800, 0x3164, 0xFFA0,
    *range(0xFE00, 0xFE10), *range(0xE0000, 0xE0080), *range(0xE0100, 0xE01F0),
}  # fmt: skip
# In a name, anything X would make a mention, hashtag or cashtag of: any @ at all, and #
# or $ before a letter, digit or underscore (full-width forms included).
_NAME_TAG = re.compile(r"[@＠]|[#＃$＄]\w")
# An RFC 2047 encoded word ("=?utf-8?q?…?="): a mail program decodes it in a From line,
# so a name written as one could carry anything, line breaks included.
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[A-Za-z]\?[^?\s]*\?=")
# What a plain name is made of: letters, marks, spaces and the punctuation of names.
_PLAIN_NAME = re.compile(r"[^\W\d_]|[\s.,'’‐-]")
# A plain name has at most this many words; a longer one reads as a message.
_PLAIN_NAME_WORDS = 6
SCHEME_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s]+")
_MARKUP = re.compile(r"[<>]")


def check_name(field: str, value: str, *, required: bool) -> str | None:
    """A person's name: one line, no markup, links, mentions, tags or encoded words, and
    nothing invisible. It signs letters and posts to officials and is published on X:
    ``<script>``, a web address or an ``@someone`` has no place there."""
    name = clean_line(field, value, limit=MAX_NAME_CHARS, required=required)
    if name is None:
        return None
    hidden = sorted(
        {
            ord(ch)
            for ch in name
            if ord(ch) in _INVISIBLE_IN_NAMES or unicodedata.category(ch) == "Cf"
        }
    )
    if hidden:
        raise invalid(
            field,
            f"{field} contains characters that show nothing ({_named(hidden)}); "
            "a name is written with visible letters",
            "invisible",
        )
    if _ENCODED_WORD.search(name):
        raise invalid(
            field,
            f"{field} {name!r} is written as an encoded mail header word (=?…?=); "
            "give the name itself",
            "encoded_word",
        )
    tag = _NAME_TAG.search(name)
    if tag:
        raise invalid(
            field,
            f"{field} {name!r} contains {tag.group()!r}, which X would publish as a "
            "mention, hashtag or cashtag; a name may not contain @, or # or $ before a "
            "letter or digit",
            "mention",
        )
    if _MARKUP.search(name):
        raise invalid(field, f"{field} {name!r} contains < or >; a name is plain text", "markup")
    if _extract_urls(name) or SCHEME_URL.search(name):
        raise invalid(field, f"{field} {name!r} contains a web address; give a name", "link")
    return name


def plain_words(text: str) -> bool:
    """Letters, marks, spaces and the punctuation of names only, in a few words."""
    plain = all(_PLAIN_NAME.match(ch) or unicodedata.category(ch)[0] == "M" for ch in text)
    return plain and len(text.split()) <= _PLAIN_NAME_WORDS


def _bad_characters(text: str, *, allow_newlines: bool) -> list[str]:
    allowed = {"\n", "\t"} if allow_newlines else set()
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if ch not in allowed and unicodedata.category(ch) in _FORBIDDEN_CATEGORIES
        }
    )


def _invisible(field: str, value: str, *, joiners: bool) -> None:
    """Refuse bidi controls and zero-width characters (``joiners``: keep ZWJ and ZWNJ)."""
    refused = _BIDI_CONTROLS | (_ZERO_WIDTH - _JOINERS if joiners else _ZERO_WIDTH)
    found = sorted({ord(ch) for ch in value if ord(ch) in refused})
    if found:
        raise invalid(
            field,
            f"{field} contains invisible characters that can disguise text ({_named(found)}); "
            "type it again without them",
            "invisible",
        )


def _named(code_points: Sequence[int]) -> str:
    """``U+00AD SOFT HYPHEN, U+E0000`` (a code point without a name shows its number)."""
    return ", ".join(f"U+{cp:04X} {unicodedata.name(chr(cp), '')}".strip() for cp in code_points)


def clean_line(field: str, value: str, *, limit: int, required: bool) -> str | None:
    """One line of text, stripped: None when empty and not required."""
    value = value.strip()
    if not value:
        if required:
            raise invalid(field, f"{field} must not be empty", "empty")
        return None
    if len(value) > limit:
        raise invalid(
            field,
            f"{field} is {len(value)} characters; at most {limit} are accepted",
            "too_long",
            length=len(value),
            limit=limit,
        )
    bad = _bad_characters(value, allow_newlines=False)
    if bad:
        raise invalid(
            field,
            f"{field} {value!r} contains control or line-break characters ({', '.join(bad)}); "
            "use a single line of text",
            "control",
        )
    _invisible(field, value, joiners=False)
    return value


def clean_text(field: str, value: str, *, limit: int) -> str:
    """Free text over several lines, with line endings made ``\\n``."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value:
        raise invalid(field, f"{field} must not be empty", "empty")
    if len(value) > limit:
        raise invalid(
            field,
            f"{field} is {len(value)} characters; this campaign accepts at most {limit}",
            "too_long",
            length=len(value),
            limit=limit,
        )
    bad = _bad_characters(value, allow_newlines=True)
    if bad:
        raise invalid(field, f"{field} contains control characters ({', '.join(bad)})", "control")
    _invisible(field, value, joiners=True)
    return value


def _extract_urls(text: str) -> list[str]:
    """What X would link in ``text`` (twitter_text, imported on first use: its tables take
    a quarter of a second to load, which a worker's start-up need not pay)."""
    from twitter_text import extract_urls

    return list(extract_urls(text))
