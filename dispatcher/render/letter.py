"""The letter as the target reads it: salutation, the appeal's body, the supporter's signature."""

from __future__ import annotations

from dispatcher.models import ClaimedDelivery


def signature(name: str, country: str | None) -> str:
    return f"{name}\n{country}" if country else name


# How a letter in a language opens after the salutation, and how it closes; any other
# language is written as English is.
_FORMS = {
    "en": (",", "Sincerely,"),
    "zh": ("：", "此致\n敬礼！"),
}


def letter_text(delivery: ClaimedDelivery) -> str:
    """Salutation, body, the closing ("Sincerely," or 此致 敬礼 in Chinese) and the
    supporter's name (and country when given)."""
    after, closing = _FORMS.get(delivery.language, _FORMS["en"])
    return (
        f"{delivery.salutation}{after}\n\n"
        f"{delivery.body.strip()}\n\n"
        f"{closing}\n\n"
        f"{signature(delivery.supporter_name, delivery.supporter_country)}\n"
    )
