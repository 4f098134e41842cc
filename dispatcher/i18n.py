"""The interface in English and Chinese.

Messages are written in English in the code and the templates, marked with ``_()`` (or
``N_()`` where a message is named before the language is known); Chinese comes from the
gettext catalogue ``locales/zh/LC_MESSAGES/messages.po``, read with Babel when first
needed (no compiled .mo is kept). The language of the request being served is a context
variable the web layer sets; dates and numbers are written for it too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from babel import Locale, UnknownLocaleError, support
from babel.core import negotiate_locale
from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES = ("en", "zh")
DEFAULT = "en"
# What each is called in itself (the switch), and its tag for <html lang> and hreflang.
NAMES = {"en": "English", "zh": "中文"}
TAGS = {"en": "en", "zh": "zh-Hans"}
LOCALES_DIR = Path(__file__).parent / "locales"

_current: ContextVar[str] = ContextVar("dispatcher_language", default=DEFAULT)


@functools.cache
def _translations(language: str) -> support.NullTranslations:
    """The catalogue, compiled in memory (fuzzy entries left out), with its plural rule
    from its Plural-Forms header."""
    path = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return support.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return support.Translations(compiled)


def current() -> str:
    """The language of what is being written now."""
    return _current.get()


@contextlib.contextmanager
def speaking(language: str) -> Iterator[None]:
    """Write in ``language`` (one of LANGUAGES; anything else is English) inside."""
    token = _current.set(language if language in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` in the current language (itself when there is no translation)."""
    if current() == DEFAULT:
        return message
    return _translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` by the catalogue's plural rule; English, which has no catalogue
    (the messages are written in it), by CLDR's rule for English (one, other)."""
    if current() == DEFAULT:
        return singular if _locale(DEFAULT).plural_form(n) == "one" else plural
    return _translations(current()).ngettext(singular, plural, n)


_ = gettext


def sentence_gap() -> str:
    """What goes between two sentences: a space, but nothing in Chinese (its full stop
    ends a sentence without one)."""
    return "" if current() == "zh" else " "


def sentences(*parts: str) -> str:
    """Sentences one after the other, as the current language joins them."""
    return sentence_gap().join(part for part in parts if part)


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is named; translate it where it is used."""
    return message


def how_long(seconds: int) -> str:
    """A wait as people say it, in the current language: '37 seconds', or whole minutes
    (rounded up) from 90 seconds on: '2 minutes'."""
    if seconds >= 90:
        minutes = -(-seconds // 60)
        return ngettext("%(num)s minute", "%(num)s minutes", minutes) % {"num": minutes}
    return ngettext("%(num)s second", "%(num)s seconds", seconds) % {"num": seconds}


def negotiate(accept_language: str | None) -> str | None:
    """The best of LANGUAGES for an ``Accept-Language`` header, or None (nothing fits):
    Babel's negotiation over the header's tags, most wanted first."""
    found = negotiate_locale(_preferred(accept_language or ""), LANGUAGES, sep="-")
    return found.lower() if found else None


def _preferred(accept_language: str) -> list[str]:
    """The tags of an ``Accept-Language`` header by their q-values, highest first (in
    the header's order among equals); those with q=0 (not wanted) or an unreadable q
    left out."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag.strip() and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _quality, _position, tag in sorted(ranked)]


# Dates and numbers: British English (10 September 2021), simplified Chinese.
_FORMATS = {"en": "en_GB", "zh": "zh_Hans_CN"}


def _locale(language: str | None) -> Locale:
    language = language or current()
    try:
        return Locale.parse(_FORMATS.get(language, language))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT)


def format_date(day: dt.date, language: str | None = None) -> str:
    """A date as people write it: '10 September 2021', '2021年9月10日'."""
    return str(babel_format_date(day, format="long", locale=_locale(language)))


def format_number(number: int, language: str | None = None) -> str:
    """A count with the language's grouping: 12,345."""
    return str(format_decimal(number, locale=_locale(language)))
