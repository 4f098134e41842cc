"""Merge fields in a campaign's subject lines, letters and posts: ``{supporter.first_name}``,
``{supporter.country}``, ``{target.name}``, ``{target.title}``.

The supporter's fields are filled in when an appeal is accepted (its stored letter reads
as sent); the official's when each delivery is claimed. Values are text that passed the
intake's checks or the campaign file's (no line breaks, no markup; a name or country
refuses anything shaped like a web address, so none can hold a field), put in as text in
one pass; a header refuses a line break.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SUPPORTER_FIELDS = ("supporter.first_name", "supporter.country")
TARGET_FIELDS = ("target.name", "target.title")
FIELDS = (*SUPPORTER_FIELDS, *TARGET_FIELDS)
# Anything that looks like a field: {word.word}. Unknown ones in a campaign file are an
# error when it loads; in a supporter's own words they are left as typed.
_FIELD = re.compile(r"\{([a-z_]+\.[a-z_]+)\}")


def unknown_fields(text: str) -> list[str]:
    """The fields ``text`` uses that are not merge fields, each once, in order."""
    return list(dict.fromkeys(f for f in _FIELD.findall(text) if f not in FIELDS))


def uses_fields(text: str) -> bool:
    return any(f in FIELDS for f in _FIELD.findall(text))


def merge(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each field in ``values`` filled in (one pass: a value that looks like a
    field stays as it is); other fields are left for a later merge."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def first_name(name: str) -> str:
    """The first word of a name as typed ("Ana" of "Ana Lima"); a name written without
    spaces (李华) whole."""
    parts = name.split()
    return parts[0] if parts else name


def supporter_values(name: str, country: str | None) -> dict[str, str]:
    return {"supporter.first_name": first_name(name), "supporter.country": country or ""}


def target_values(name: str, title: str | None) -> dict[str, str]:
    return {"target.name": name, "target.title": title or ""}
