"""Tweet text: the target's handles, the appeal text, the supporter's signature."""

from __future__ import annotations

import base64
import functools
import hashlib
import unicodedata

MAX_WEIGHTED_LENGTH = 280


REFERENCE_CHARS = 5
# What a post is weighed with before its appeal exists: as long as any reference.
PLACEHOLDER_REFERENCE = "x" * REFERENCE_CHARS


def post_reference(appeal_id: str, variant: int = 0) -> str:
    """A short reference to the appeal (five letters and digits, the same for every post
    of one appeal): posts from the organisation's one account never repeat each other,
    even from two supporters of the same name with the same words. ``variant`` > 0 gives
    another reference of the same length, for a post X refused as a duplicate."""
    key = appeal_id if variant == 0 else f"{appeal_id}#{variant}"
    digest = hashlib.sha256(key.encode()).digest()
    return base64.b32encode(digest).decode()[:REFERENCE_CHARS].lower()


def compose_tweet(
    handles: str, text: str, supporter_name: str, reference: str = PLACEHOLDER_REFERENCE
) -> str:
    """``@a @b <text> — <name> (ref <reference>)``."""
    return f"{handles} {text.strip()} — {supporter_name} (ref {reference})"


def compose_own_post(handles: str, text: str) -> str:
    """``@a @b <text>``: a post from the supporter's own account (or the one handed to
    them to send themselves) names them nowhere else; their account says who they are."""
    return f"{handles} {text.strip()}"


def weighted_length(text: str) -> int:
    """Length as X counts it (twitter-text rules: CJK and emoji weigh 2, URLs 23)."""
    from twitter_text import parse_tweet  # its emoji tables take a while to load

    return int(parse_tweet(text).weightedLength)


def tweet_weight(
    handles: str, text: str, supporter_name: str, reference: str = PLACEHOLDER_REFERENCE
) -> int:
    """``weighted_length(compose_tweet(handles, text, supporter_name, reference))``, with
    what does not depend on the name weighed once (a campaign's post is the same text for
    every supporter, and twitter-text's emoji search costs per character).

    The parts are joined by spaces, which no link or emoji spans; the name is weighed on
    its own only when it starts and ends with a letter or digit and holds nothing a link
    is made of, so it cannot reach into the text beside it. Any other name: the whole post.
    """
    if not _stands_alone(supporter_name):
        return weighted_length(compose_tweet(handles, text, supporter_name, reference))
    before = _weight(f"{handles} {text.strip()} —")
    return before + 1 + _name_weight(supporter_name) + 1 + _weight(f"(ref {reference})")


# Characters a link (a domain's dot, a scheme, a path) or a mention is made of.
_LINKING = frozenset("./:@＠．。｡#＃$＄")


def _stands_alone(name: str) -> bool:
    if not name or not _letter_or_digit(name[0]) or not _letter_or_digit(name[-1]):
        return False
    return _LINKING.isdisjoint(name)


def _name_weight(name: str) -> int:
    """A name's weight: one a character for letters, digits and spaces below U+1100 (no
    emoji among them, all in twitter-text's first range of weight 1), else as X counts."""
    if all(ord(ch) < 0x1100 and (ch.isalnum() or ch == " ") for ch in name):
        return len(unicodedata.normalize("NFC", name))
    return weighted_length(name)


def _letter_or_digit(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


@functools.lru_cache(maxsize=1024)
def _weight(text: str) -> int:
    return weighted_length(text)
