"""The supporter as intake takes them: a name, an address mail can be sent to, a country."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from dispatcher.service.appeal_parts import Supporter
from dispatcher.service.appeal_request import AppealRequest
from dispatcher.service.errors import invalid
from dispatcher.service.text_rules import check_name, clean_line

MAX_COUNTRY_CHARS = 64


def check_supporter(request: AppealRequest) -> Supporter:
    name = check_name("supporter.name", request.supporter_name, required=True)
    assert name is not None
    email = check_email("supporter.email", request.supporter_email)
    return Supporter(name, email, check_country(request))


def check_country(request: AppealRequest) -> str | None:
    return clean_line(
        "supporter.country",
        request.supporter_country or "",
        limit=MAX_COUNTRY_CHARS,
        required=False,
    )


def check_email(field: str, value: str) -> str:
    """A supporter's address, normalised (NFKC: ｄｕｐ@example.org is dup@example.org), in
    plain ASCII before the @ (the relay cannot carry anything else there)."""
    raw = unicodedata.normalize("NFKC", value).strip()
    local = raw.rpartition("@")[0]
    if local and not local.isascii():
        raise invalid(
            field,
            f"{field} {value!r} has characters outside plain ASCII before the @; "
            "use an address written with a–z, 0–9 and . _ + - there",
            "email_not_ascii",
        )
    try:
        email = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise invalid(
            field, f"{field} {value!r} is not a valid email address: {exc}", "email_invalid"
        ) from None
    return email.normalized
