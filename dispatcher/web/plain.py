"""What a refusal says to a supporter on a page: plain words, beside the field it is about.

The service names the field and the rule (``supporter.email``, ``email_invalid``); the
API passes its own sentence on to developers. A page says it the way the GOV.UK Design
System's error messages do: what to do, in the supporter's terms, with no field paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dispatcher.i18n import N_, _, format_number, how_long
from dispatcher.service import ErrorKind, ServiceError

# The form control each service field is about (the id a summary link jumps to).
FIELD_IDS = {
    "supporter.name": "name",
    "supporter.email": "email",
    "supporter.country": "country",
    "subject": "subject",
    "message": "message",
    "language": "message",
    "tweet": "tweet",
    "channels": "who",
    "targets": "who",
}

# The order the controls come in on the campaign page: a summary lists problems so.
PAGE_ORDER = ("who", "subject", "message", "tweet", "name", "email", "country")

_WHAT = {
    "name": N_("Your name"),
    "email": N_("Your email address"),
    "country": N_("Country"),
    "subject": N_("The subject line"),
    "message": N_("Your letter"),
    "tweet": N_("Your post"),
}

_SAID = {
    ("name", "empty"): N_("Enter your name"),
    ("name", "markup"): N_("Enter your name as plain text, without < or >"),
    ("name", "link"): N_("Enter your name without a web address"),
    ("name", "mention"): N_("Enter your name without @, # or $: they would make it a link on X"),
    ("name", "encoded_word"): N_("Enter your name as you write it, not in email code"),
    ("email", "empty"): N_("Enter your email address"),
    ("email", "email_invalid"): N_(
        "Enter an email address in the right format, like name@example.org"
    ),
    ("email", "email_not_ascii"): N_(
        "Enter an email address with only plain letters, numbers and . _ + - before the @, "
        "like jose@example.org"
    ),
    ("message", "empty"): N_("Write your letter, or keep the sample letter"),
    ("tweet", "empty"): N_("Write your post, or untick X to post nothing"),
    ("who", "no_choice"): N_("Choose at least one official and one way to reach them"),
    ("who", "channel_unavailable"): N_("Choose only the ways of reaching each official shown here"),
    ("who", "unknown_target"): N_("Choose officials from the list on this page"),
    ("who", "unknown_channel"): N_("Choose the ways of reaching each official shown here"),
    ("who", "channel_off"): N_("Choose the ways of reaching each official shown here"),
    ("message", "language"): N_("Choose one of the sample letters shown, or write your own"),
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
        return Problem(_whole_form(error), None)
    return Problem(_plain_text(anchor, error), anchor)


def _whole_form(error: ServiceError) -> str:
    """A refusal of the whole form: a limit reached, the service unavailable, the
    campaign closed, or (rarely) the service's own sentence."""
    seconds = error.params.get("seconds")
    if error.reason == "rate_limited" and isinstance(seconds, int):
        return _("Many appeals came from here in a short time. Please try again in %(wait)s.") % {
            "wait": how_long(seconds)
        }
    if error.reason == "unavailable":
        return _(
            "Appeals cannot be sent at the moment, so nothing was sent. Please try again later."
        )
    if error.kind is ErrorKind.CLOSED:
        return _("This campaign is closed: its deadline has passed, so nothing was sent.")
    return error.message[:1].upper() + error.message[1:]


# What a fax cannot print, by the control the characters were typed in.
_FAX_FONT = {
    "name": N_(
        "A fax cannot print some characters in your name (%(characters)s); remove them, or "
        "untick fax"
    ),
    "country": N_(
        "A fax cannot print some characters in your country (%(characters)s); remove them, "
        "or untick fax"
    ),
    "message": N_(
        "A fax cannot print some characters in your letter (%(characters)s); remove them, "
        "or untick fax"
    ),
}


def _plain_text(anchor: str, error: ServiceError) -> str:
    reason, params = error.reason or "", error.params
    what = _(_WHAT.get(anchor, N_("This")))
    if (anchor, reason) in _SAID:
        return _(_SAID[(anchor, reason)])
    if reason in ("too_long", "post_too_long"):
        length, limit = int(str(params["length"])), int(str(params["limit"]))
        values = {
            "what": what,
            "limit": format_number(limit),
            "length": format_number(length),
            "over": format_number(length - limit),
        }
        if reason == "too_long":
            return (
                _("%(what)s must be %(limit)s characters or fewer; it is %(over)s too long")
                % values
            )
        return (
            _(
                "Your post is %(length)s characters once the officials' handles and your name are "
                "added; X allows %(limit)s. Shorten it by %(over)s"
            )
            % values
        )
    if reason == "control":
        return _(
            "%(what)s contains characters that cannot be used, such as line breaks; type it again"
        ) % {"what": what}
    if reason == "invisible":
        return _("%(what)s contains hidden characters that can disguise text; type it again") % {
            "what": what
        }
    if reason == "post_mention":
        return (
            _("Your post can mention only the officials of this campaign; remove %(handles)s")
            % params
        )
    if reason == "post_link":
        return _("Your post can link only to %(domains)s; remove %(url)s") % params
    if reason == "fax_pages":
        return (
            _(
                "As a fax, your letter would be %(pages)s pages; this campaign sends at most "
                "%(limit)s. Shorten your letter, or untick fax"
            )
            % params
        )
    if reason == "fax_font":
        return _(_FAX_FONT.get(anchor, _FAX_FONT["message"])) % params
    return error.message[:1].upper() + error.message[1:]
