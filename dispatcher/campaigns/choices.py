"""How a supporter's choice of officials and channels fans out into the deliveries of an
appeal (see :meth:`Campaign.choose_pairs <dispatcher.campaigns.model.Campaign.choose_pairs>`),
and the sentence refusing a choice the campaign cannot deliver."""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.campaigns.parts import Target
from dispatcher.models import SENT_CHANNELS, Channel

Pair = tuple[Target, Channel]
# Ways of reaching an official that supporters report, never sent (named in the refusal).
_REPORTED_NOT_SENT = {"phone", "post", "postal", "letter"}


class ChoiceError(ValueError):
    """A choice the campaign cannot deliver: ``field`` (``targets`` or ``channels``), one
    sentence naming the bad value and what is accepted, and ``reason`` (the rule)."""

    def __init__(self, field: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.reason = reason


def unknown_target(campaign_id: str, target_id: str, targets: Sequence[Target]) -> ChoiceError:
    known = ", ".join(t.id for t in targets)
    return ChoiceError(
        "targets",
        f"unknown target {target_id!r} in campaign {campaign_id}; known targets: {known}",
        "unknown_target",
    )


def channels_named(wanted: Sequence[str]) -> list[Channel]:
    """The channels named (each once), or ChoiceError naming one that is not sent."""
    chosen: list[Channel] = []
    accepted = ", ".join(c.value for c in SENT_CHANNELS)
    for name in dict.fromkeys(wanted):
        try:
            chosen.append(Channel(name.strip().lower()))
        except ValueError:
            hint = (
                " (phone calls and posted letters are reported, not sent)"
                if name in _REPORTED_NOT_SENT
                else ""
            )
            raise ChoiceError(
                "channels",
                f"unknown channel {name!r}; accepted: {accepted}{hint}",
                "unknown_channel",
            ) from None
    return chosen


def fan_out(targets: list[Target], channels: list[Channel] | None, *, explicit: bool) -> list[Pair]:
    """Every chosen channel (None: every one it has) of every chosen target. A channel a
    target lacks is skipped, unless both were named explicitly: then it is an error."""
    pairs: list[Pair] = []
    for target in targets:
        available = target.channels
        for channel in channels or available:
            if channel in available:
                pairs.append((target, channel))
            elif explicit and channels is not None:
                have = ", ".join(c.value for c in available) or "none"
                raise ChoiceError(
                    "channels",
                    f"target {target.id!r} cannot be reached by {channel.value}; "
                    f"its channels: {have}",
                    "channel_unavailable",
                )
    if not pairs:
        asked = ", ".join(c.value for c in channels or ())
        raise ChoiceError(
            "channels", f"none of the chosen targets can be reached by {asked}", "no_choice"
        )
    return pairs
