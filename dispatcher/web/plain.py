"""What a refusal says to a supporter on a page: plain words, beside the field it is about.

The service names the field and the rule (``supporter.email``, ``email_invalid``); the
API passes its own sentence on to developers. A page says it the way the GOV.UK Design
System's error messages do: what to do, in the supporter's terms, with no field paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dispatcher.service import ServiceError

# The form control each service field is about (the id a summary link jumps to).
FIELD_IDS = {
    "supporter.name": "name",
    "supporter.email": "email",
    "supporter.country": "country",
    "message": "message",
    "language": "message",
    "tweet": "tweet",
    "channels": "who",
    "targets": "who",
}

# The order the controls come in on the campaign page: a summary lists problems so.
PAGE_ORDER = ("who", "message", "tweet", "name", "email", "country")

_WHAT = {
    "name": "Your name",
    "email": "Your email address",
    "country": "Country",
    "message": "Your letter",
    "tweet": "Your post",
}

_SAID = {
    ("name", "empty"): "Enter your name",
    ("name", "markup"): "Enter your name as plain text, without < or >",
    ("name", "link"): "Enter your name without a web address",
    ("email", "empty"): "Enter your email address",
    ("email", "email_invalid"): "Enter an email address in the right format, like name@example.org",
    ("email", "email_not_ascii"): (
        "Enter an email address with only plain letters, numbers and . _ + - before the @, "
        "like jose@example.org"
    ),
    ("message", "empty"): "Write your letter, or keep the sample letter",
    ("tweet", "empty"): "Write your post, or keep the sample post",
    ("who", "no_choice"): "Choose at least one official and one way to reach them",
    ("who", "channel_unavailable"): "Choose only the ways of reaching each official shown here",
    ("who", "unknown_target"): "Choose officials from the list on this page",
    ("who", "unknown_channel"): "Choose the ways of reaching each official shown here",
    ("message", "language"): "Choose one of the sample letters shown, or write your own",
}


@dataclass(frozen=True)
class Problem:
    """One thing to put right: the words, and the id of the control it is about (None
    for a problem with the whole form)."""

    text: str
    anchor: str | None


def plain_problems(errors: Sequence[ServiceError]) -> list[Problem]:
    """Each error in plain words, in the order of the page (whole-form problems first)."""
    problems = [plain_problem(error) for error in errors]
    return sorted(problems, key=lambda p: PAGE_ORDER.index(p.anchor) + 1 if p.anchor else 0)


def plain_problem(error: ServiceError) -> Problem:
    anchor = FIELD_IDS.get(error.field or "")
    if anchor is None:
        return Problem(error.message[:1].upper() + error.message[1:], None)
    return Problem(_plain_text(anchor, error), anchor)


def _plain_text(anchor: str, error: ServiceError) -> str:
    reason, params = error.reason or "", error.params
    what = _WHAT.get(anchor, "This")
    if (anchor, reason) in _SAID:
        return _SAID[(anchor, reason)]
    if reason == "too_long":
        over = int(str(params["length"])) - int(str(params["limit"]))
        return f"{what} must be {params['limit']} characters or fewer; it is {over} too long"
    if reason == "control":
        return f"{what} contains characters that cannot be used, such as line breaks; type it again"
    if reason == "invisible":
        return f"{what} contains hidden characters that can disguise text; type it again"
    if reason == "post_too_long":
        over = int(str(params["length"])) - int(str(params["limit"]))
        return (
            f"Your post is {params['length']} characters once the officials' handles and your "
            f"name are added; X allows {params['limit']}. Shorten it by {over}"
        )
    if reason == "post_mention":
        return (
            f"Your post can mention only the officials of this campaign; remove {params['handles']}"
        )
    if reason == "post_link":
        return f"Your post can link only to {params['domains']}; remove {params['url']}"
    if reason == "fax_font":
        return (
            f"A fax cannot print some characters in your letter ({params['characters']}); "
            "remove them, or untick fax"
        )
    return error.message[:1].upper() + error.message[1:]
