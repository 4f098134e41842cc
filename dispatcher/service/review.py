"""Review of supporter-written letters, for campaigns that ask for it
(``review_own_letters``): intake decides whether an appeal is held (:func:`needs_review`),
and its deliveries wait until an operator approves them (they are queued) or rejects them
(they are cancelled, and the supporter is told). Untouched sample letters are never held."""

from __future__ import annotations

import difflib
import re

from dispatcher.campaigns import Campaign
from dispatcher.models import ErrorInfo, utcnow
from dispatcher.service import audit
from dispatcher.service.appeal_parts import Letter, Supporter
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.service.text_rules import plain_words
from dispatcher.store.operators import HeldAppeal

__all__ = [
    "REJECTED",
    "HeldAppeal",
    "approve_letter",
    "decide_letter",
    "held_count",
    "held_letters",
    "letter_changes",
    "needs_review",
    "reject_letter",
]

# The error a rejected delivery carries (the supporter's page says it in plain words).
REJECTED = "Rejected"


def needs_review(
    campaign: Campaign, supporter: Supporter, letter: Letter, tweet: str | None
) -> bool:
    """Whether an appeal is held for review: the campaign reviews supporters' words, and
    something goes out in words of their own: a letter or subject line they wrote or
    changed (an unchanged sample letter is the campaign's, see ``letter_rules``), a post
    other than the campaign's, or a name or country (signed under every letter, the name
    also under the public post) that is not plainly a name or a country: digits, symbols,
    or more than a few words."""
    return campaign.review_own_letters and (
        letter.own
        or letter.own_subject
        or (tweet is not None and tweet != campaign.tweet_in(letter.language))
        or not plain_words(supporter.name)
        or (supporter.country is not None and not plain_words(supporter.country))
    )


# A word, a run of spaces, or one CJK character (Chinese has no spaces between words).
_TOKEN = re.compile(
    r"\s+|[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+"
)
Change = tuple[str, str]  # ("same" | "added" | "removed", text)


def letter_changes(sample: str, letter: str) -> list[Change]:
    """What the supporter changed in the sample letter, word by word: the letter as a run
    of unchanged, added and removed pieces, in reading order."""
    old, new = _TOKEN.findall(sample), _TOKEN.findall(letter)
    pieces: list[Change] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(new[j1:j2])))
            continue
        if i2 > i1:
            pieces.append(("removed", "".join(old[i1:i2])))
        if j2 > j1:
            pieces.append(("added", "".join(new[j1:j2])))
    return pieces


async def held_letters(service: Service, *, limit: int = 100) -> list[HeldAppeal]:
    """Letters waiting for review, the oldest first."""
    return await service.for_operators.held_appeals(limit=limit)


async def held_count(service: Service) -> int:
    """How many appeals have letters waiting for review."""
    return await service.for_operators.held_count()


async def _release(
    service: Service, appeal_id: str, *, approve: bool, by: str, note: str = ""
) -> int:
    error = None
    if not approve:
        message = "not approved by the campaign's staff" + (f": {note}" if note else "")
        error = ErrorInfo(REJECTED, None, message[:500])
    changed = await service.for_operators.release_held(
        appeal_id, approve=approve, now=utcnow(), error=error
    )
    if changed == 0:
        if await service.for_operators.appeal_campaign(appeal_id) is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"no appeal {appeal_id!r}", "appeal_id")
        raise ServiceError(
            ErrorKind.CONFLICT,
            f"appeal {appeal_id} has no letter waiting for review (it was approved or "
            "rejected already, or never held)",
            "appeal_id",
        )
    action = "approve" if approve else "reject"
    subject = f"the letter of appeal {appeal_id} ({changed} deliveries)"
    await audit.record(service, by, action, subject + (f": {note}" if note else ""))
    return changed


async def approve_letter(service: Service, appeal_id: str, *, by: str) -> int:
    """Queue the appeal's held deliveries; returns how many. ServiceError: not found, or
    conflict (nothing held)."""
    return await _release(service, appeal_id, approve=True, by=by)


async def reject_letter(service: Service, appeal_id: str, *, by: str, note: str = "") -> int:
    """Cancel the appeal's held deliveries, with ``note`` (the operator's reason, required)
    kept on them and in the audit log; returns how many. ServiceError as for approve, and
    invalid for an empty note."""
    note = note.strip()
    bad = sorted({f"U+{ord(ch):04X}" for ch in note if ord(ch) < 0x20 and ch not in "\n\t"})
    if bad:
        raise ServiceError(
            ErrorKind.INVALID,
            f"note contains control characters ({', '.join(bad)}); accepted: text without them",
            "note",
        )
    if not note:
        if await service.for_operators.appeal_campaign(appeal_id) is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"no appeal {appeal_id!r}", "appeal_id")
        raise ServiceError(
            ErrorKind.INVALID,
            "note is empty; a letter is rejected only with the reason why, kept in the audit "
            "log (accepted: up to 500 characters)",
            "note",
        )
    return await _release(service, appeal_id, approve=False, by=by, note=note)


DECISIONS = ("approve", "reject")


async def decide_letter(
    service: Service, appeal_id: str, decision: str, *, by: str, note: str = ""
) -> int:
    """``approve`` or ``reject`` (with ``note``) the appeal's held letter; returns how many
    deliveries it changed. ServiceError: not found (also for another decision), conflict."""
    if decision == "approve":
        return await approve_letter(service, appeal_id, by=by)
    if decision == "reject":
        return await reject_letter(service, appeal_id, by=by, note=note)
    raise ServiceError(
        ErrorKind.NOT_FOUND,
        f"no review decision {decision!r}; accepted: {', '.join(DECISIONS)}",
        "decision",
    )
