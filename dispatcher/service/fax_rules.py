"""What a fax can carry: the characters its font can draw, and how many pages the letter
takes as the worker will render it (both refused at intake, never sent broken). With no
font to draw faxes at all, every fax is refused, the sentence saying what to install."""

from __future__ import annotations

from dispatcher.campaigns import Campaign, Target
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.fax import DEFAULT_HEADER_TEXT, fax_page_count, fewest_fax_pages
from dispatcher.render.fonts import FaxFont, FaxFontError, fax_font
from dispatcher.service.appeal_parts import Letter, Supporter, letter_to
from dispatcher.service.errors import invalid

Pair = tuple[Target, Channel]


def _font() -> FaxFont:
    """This process's fax font; refused (the channels field) when there is none."""
    try:
        return fax_font()
    except FaxFontError as exc:
        raise invalid(
            "channels",
            f"{exc} (until then, leave out fax)",
            "fax_font_missing",
        ) from None


def check_fax_font(supporter: Supporter, letter: Letter, pairs: list[Pair]) -> None:
    """A fax is refused at intake, not sent as empty boxes, when the font lacks a script;
    the error names the field the characters are in (the name, the country, the letter)."""
    font = _font()
    salutations = " ".join(t.salutation_in(letter.language) for t, c in pairs if c is Channel.FAX)
    for field, text, words in (
        ("supporter.name", supporter.name, "your name"),
        ("supporter.country", supporter.country or "", "your country"),
        ("message", f"{letter.subject} {letter.body} {salutations}", "the letter"),
    ):
        missing = font.uncovered(text)
        if missing:
            shown = "".join(missing[:10])
            raise invalid(
                field,
                f"the fax font cannot draw these characters in {words}: {shown!r}; the fax "
                "channel accepts Latin, Greek, Cyrillic and Chinese (CJK) script — leave out "
                "fax or write in one of those scripts",
                "fax_font",
                characters=shown,
            )


def check_fax_pages(
    campaign: Campaign, supporter: Supporter, letter: Letter, pairs: list[Pair]
) -> None:
    """Each official's fax, laid out as the fax renderer lays it out (cover, subject,
    salutation, letter, signature), fits the campaign's ``max_fax_pages``."""
    limit = campaign.max_fax_pages
    pages = fewest_fax_pages(letter.body)  # padding with line breaks is refused at once
    if pages <= limit:
        font = _font()
        pages = max(
            fax_page_count(
                _fax_of(supporter, letter, target), header_text=DEFAULT_HEADER_TEXT, font=font
            )
            for target, channel in pairs
            if channel is Channel.FAX
        )
    if pages > limit:
        raise invalid(
            "message",
            f"your letter would be a fax of {pages} pages; this campaign sends at most "
            f"{limit} pages by fax — shorten the letter or leave out fax",
            "fax_pages",
            pages=pages,
            limit=limit,
        )


def _fax_of(supporter: Supporter, letter: Letter, target: Target) -> ClaimedDelivery:
    """The fax as the worker will render it."""
    address = target.address(Channel.FAX) or ""
    return letter_to(target, supporter, letter, channel=Channel.FAX, address=address)
