"""The letter as intake takes it: the supporter's own words or the campaign's sample (an
unchanged sample is the campaign's words, whoever submits it), in the language it is
written in, with its subject line; and the letter with the supporter's merge fields."""

from __future__ import annotations

import dataclasses

from dispatcher.campaigns import Campaign
from dispatcher.merge_fields import merge, supporter_values
from dispatcher.models import is_language_code
from dispatcher.service.appeal_parts import Letter, Supporter
from dispatcher.service.appeal_request import AppealRequest
from dispatcher.service.errors import invalid
from dispatcher.service.text_rules import clean_line, clean_text


def own_words(campaign: Campaign, request: AppealRequest, language: str) -> str | None:
    """The letter the supporter wrote or changed; None for none, or for the sample letter
    in ``language`` sent back unchanged (a page shows it to edit)."""
    message = request.message
    if message is None or not message.strip() or campaign.is_sample(message, language):
        return None
    return message


def check_letter(campaign: Campaign, request: AppealRequest) -> Letter:
    """The supporter's own words, or the campaign's sample in the chosen language, and
    the subject line: the supporter's own (campaigns with ``editable_subject``) or one of
    the letter's, the same for the same supporter."""
    language = (request.language or campaign.default_language).strip().lower()
    template = campaign.letter.get(language)
    own = own_words(campaign, request, language)
    if own is not None:
        body = clean_text("message", own, limit=campaign.max_message_chars)
        if not is_language_code(language):
            raise invalid(
                "language", f"language {language!r} is not a code such as 'en' or 'zh'", "language"
            )
        language = written_in(body, language, campaign)
        subject, own_subject = check_subject(campaign, request, language)
        return Letter(language, subject, body, own=True, own_subject=own_subject)
    if template is None:
        have = ", ".join(sorted(campaign.letter))
        raise invalid(
            "language",
            f"campaign {campaign.id} has no sample letter in {language!r} (it has: {have}); "
            "write your own message or choose one of those",
            "language",
        )
    subject, own_subject = check_subject(campaign, request, language)
    return Letter(language, subject, template.body.strip(), own=False, own_subject=own_subject)


def check_subject(campaign: Campaign, request: AppealRequest, language: str) -> tuple[str, bool]:
    """(subject line, whether the supporter wrote it)."""
    letter = campaign.sample_letter(language)
    typed = (request.subject or "").strip()
    if typed and typed not in letter.subject_lines:
        if not campaign.editable_subject:
            raise invalid(
                "subject",
                f"campaign {campaign.id} sets its subject lines; accepted: no subject (one of "
                "the campaign's is used)",
                "subject_fixed",
            )
        own = clean_line("subject", typed, limit=campaign.max_subject_chars, required=True)
        return own or typed, True
    if typed:
        return typed, False
    key = f"{campaign.id}\n{request.supporter_email.strip().lower()}"
    return letter.subject_for(key), False


def merged(letter: Letter, supporter: Supporter) -> Letter:
    """The letter with the supporter's merge fields filled in (the official's are filled
    in as each delivery is rendered)."""
    values = supporter_values(supporter.name, supporter.country)
    return dataclasses.replace(
        letter, subject=merge(letter.subject, values), body=merge(letter.body, values)
    )


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def written_in(body: str, chosen: str, campaign: Campaign) -> str:
    """The language a supporter's own letter is written in, so that its frame (greeting,
    subject, closing) matches it: Chinese if most of its letters are Chinese characters,
    not Chinese if almost none are; else (or if the campaign has no letter in the language
    found) the one chosen on the page."""
    letters = [ch for ch in body if ch.isalpha()]
    if not letters:
        return chosen
    share = sum(map(_is_cjk, letters)) / len(letters)
    if share >= 0.3 and chosen != "zh" and "zh" in campaign.letter:
        return "zh"
    if share < 0.02 and chosen == "zh":
        others = [lang for lang in campaign.letter if lang != "zh"]
        fallback = campaign.default_language if campaign.default_language != "zh" else None
        return fallback or (others[0] if others else chosen)
    return chosen
