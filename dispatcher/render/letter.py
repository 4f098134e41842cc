"""The letter as the target reads it: salutation, the appeal's body, the supporter's signature."""

from __future__ import annotations

from dispatcher.models import ClaimedDelivery


def signature(name: str, country: str | None) -> str:
    return f"{name}\n{country}" if country else name


def letter_text(delivery: ClaimedDelivery) -> str:
    """Salutation, body, "Sincerely," and the supporter's name (and country when given)."""
    return (
        f"{delivery.salutation},\n\n"
        f"{delivery.body.strip()}\n\n"
        "Sincerely,\n\n"
        f"{signature(delivery.supporter_name, delivery.supporter_country)}\n"
    )
