"""The post on X: its text (the campaign's, or the supporter's own), its weighted length
once the officials' handles and the name are added, and what it may mention or link to."""

from __future__ import annotations

import re

from dispatcher.campaigns import Campaign, Target
from dispatcher.merge_fields import merge, supporter_values, target_values
from dispatcher.models import Channel
from dispatcher.render.tweet import MAX_WEIGHTED_LENGTH, tweet_weight
from dispatcher.service.errors import invalid
from dispatcher.service.text_rules import SCHEME_URL, clean_text

Pair = tuple[Target, Channel]
# A mention on X as twitter-text finds one: @ or its full-width form, not inside a word or
# an address, or straight after "RT" or "RT:" (a retweet's mark: "RT@someone" mentions
# someone), then up to 15 letters, digits or underscores.
_MENTION = re.compile(
    r"(?:(?<![A-Za-z0-9_!#$%&*@＠])|(?<=(?<![A-Za-z0-9_+~.-])[Rr][Tt])"
    r"|(?<=(?<![A-Za-z0-9_+~.-])[Rr][Tt]:))[@＠]([A-Za-z0-9_]{1,15})"
)


# What a post may hold before it is weighed: generous, so that a long post is refused by
# its weighted length (the figure the page's live counter shows), not by a raw count.
MAX_POST_CHARS = 4 * MAX_WEIGHTED_LENGTH


def post_weights(
    campaign: Campaign,
    tweet: str,
    supporter: tuple[str, str | None],
    targets: list[Target],
    language: str,
) -> dict[str, int]:
    """Target id → the weighted length of the post each X target gets: its handles, the
    text with the merge fields filled in (the official's in ``language``, as the delivery
    carries them), the signature."""
    name, country = supporter
    lengths = {}
    for target in targets:
        if not target.twitter:
            continue
        official = target_values(target.name_in(language), target.title_in(language))
        values = {**supporter_values(name, country), **official}
        lengths[target.id] = tweet_weight(" ".join(target.twitter), merge(tweet, values), name)
    return lengths


def check_tweet(
    campaign: Campaign,
    language: str | None,
    typed: str | None,
    supporter: tuple[str, str | None],
    pairs: list[Pair],
) -> str:
    """The post's text before its merge fields are filled in (omitted: the campaign's
    post; emptied: refused, never replaced by the campaign's words); each X target's post,
    as composed with ``supporter`` (name, country) and the target, must fit X's limit."""
    language = (language or campaign.default_language).strip().lower()
    tweet = campaign.tweet_in(language)
    if typed is not None and not typed.strip():
        raise invalid(
            "tweet",
            "tweet is empty; with X chosen a post is needed: write one, leave X out, or omit "
            "tweet for the campaign's post",
            "empty",
        )
    if typed is not None:
        tweet = clean_text("tweet", typed, limit=MAX_POST_CHARS)
        check_post_content(campaign, tweet)
    on_x = [t for t, c in pairs if c is Channel.TWITTER]
    lengths = post_weights(campaign, tweet, supporter, on_x, language)
    if lengths and max(lengths.values()) > MAX_WEIGHTED_LENGTH:
        # The longest, as the page's live counter says it (the same figure).
        target_id, length = max(lengths.items(), key=lambda item: item[1])
        handles = next(" ".join(t.twitter) for t in on_x if t.id == target_id)
        whose = "your tweet" if typed else "the campaign tweet"
        raise invalid(
            "tweet",
            f"{whose} is {length} weighted characters once {handles} and your name are "
            f"added; X accepts at most {MAX_WEIGHTED_LENGTH} (CJK characters count 2)",
            "post_too_long",
            length=length,
            limit=MAX_WEIGHTED_LENGTH,
        )
    return tweet


def check_post_content(campaign: Campaign, text: str) -> None:
    """A supporter's own post goes out from the organisation's account: it may mention
    only the campaign's targets and link only to the campaign's domains."""
    ours = {h.lstrip("@").lower() for t in campaign.targets for h in t.twitter}
    others = sorted({m for m in _MENTION.findall(text) if m.lower() not in ours})
    if others:
        allowed = ", ".join(sorted(f"@{h}" for h in ours)) or "none"
        raise invalid(
            "tweet",
            f"your post mentions {', '.join('@' + m for m in others)}; posts from the "
            f"campaign's account may mention only its officials ({allowed})",
            "post_mention",
            handles=", ".join("@" + m for m in others),
        )
    # What X would link (its own rules, known top-level domains), and anything with a scheme.
    for url in dict.fromkeys([*_extract_urls(text), *SCHEME_URL.findall(text)]):
        host = re.sub(r"^[a-z]+://", "", url.lower()).split("/")[0].split(":")[0]
        if not any(host == d or host.endswith("." + d) for d in campaign.link_domains):
            domains = ", ".join(campaign.link_domains) or "none"
            raise invalid(
                "tweet",
                f"your post links to {url!r}; posts from the campaign's account may link "
                f"only to: {domains}",
                "post_link",
                url=url,
                domains=domains,
            )


def _extract_urls(text: str) -> list[str]:
    """What X would link in ``text`` (twitter_text, imported on first use: its tables take
    a quarter of a second to load, which a worker's start-up need not pay)."""
    from twitter_text import extract_urls

    return list(extract_urls(text))
