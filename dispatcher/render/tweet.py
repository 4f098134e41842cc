"""Tweet text: the target's handles, the appeal text, the supporter's signature."""

from __future__ import annotations

MAX_WEIGHTED_LENGTH = 280


def compose_tweet(handles: str, text: str, supporter_name: str) -> str:
    """``@a @b <text> — <name>``: the signature makes each supporter's tweet distinct."""
    return f"{handles} {text.strip()} — {supporter_name}"


def weighted_length(text: str) -> int:
    """Length as X counts it (twitter-text rules: CJK and emoji weigh 2, URLs 23)."""
    from twitter_text import parse_tweet  # its emoji tables take a while to load

    return int(parse_tweet(text).weightedLength)
