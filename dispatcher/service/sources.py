"""Where an appeal came from, and which pages it was sent from: ``?source=`` and the UTM
parameters a campaign's links carry, kept with the appeal for the report's ``sources``;
and the interface language, which the supporter's receipt is written in."""

from __future__ import annotations

import re
from collections.abc import Mapping

from dispatcher.i18n import LANGUAGES
from dispatcher.models import Sources
from dispatcher.service.errors import invalid

MAX_SOURCE_CHARS = 64
# A tag as campaigns write them in links: letters, digits and . _ ~ + - (no spaces, no
# markup, nothing a spreadsheet would run as a formula).
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}")


def check_sources(given: Mapping[str, str | None], *, strict: bool) -> Sources:
    """The tags, lower-cased; ``strict`` (the API): a bad one is an error naming it; else
    (a link someone followed, not the supporter's typing) it is dropped."""
    kept: dict[str, str | None] = {}
    for name in Sources.FIELDS:
        value = (given.get(name) or "").strip()
        if not value:
            kept[name] = None
        elif _TAG.fullmatch(value):
            kept[name] = value.lower()
        elif strict:
            field = name.replace("utm_", "utm.")  # as the API's body has it
            raise invalid(
                field,
                f"{field} {value[:80]!r} is not accepted; accepted: up to {MAX_SOURCE_CHARS} "
                "letters, digits and . _ ~ + - (starting with a letter or digit)",
                "source",
            )
        else:
            kept[name] = None
    return Sources(**kept)


def check_page_language(value: str | None) -> str | None:
    """One of the interface's languages, or None (the letter's language is used)."""
    if value is None or not value.strip():
        return None
    if value.strip().lower() not in LANGUAGES:
        raise invalid(
            "page_language",
            f"page_language {value[:20]!r} is not accepted; accepted: {', '.join(LANGUAGES)}",
            "language",
        )
    return value.strip().lower()
