"""A campaign as its file describes it, validated, and what it decides for an appeal: the
sample letter in a language, and the officials and channels a supporter's choice reaches."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatcher.campaigns.choices import Pair, channels_named, fan_out, unknown_target
from dispatcher.campaigns.parts import (
    MAX_SUBJECT_CHARS,
    CampaignText,
    Letter,
    Pacing,
    Slug,
    Target,
    check_merge_fields,
)
from dispatcher.models import is_language_code


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    title: str = Field(min_length=1)
    organisation: str = Field(min_length=1)
    deadline: dt.date
    summary: str = ""
    default_language: str = "en"
    letter: dict[str, Letter] = Field(min_length=1)
    tweet: str = Field(min_length=1)
    max_message_chars: int = Field(default=10_000, gt=0, le=10_000)
    # Pages a fax of one appeal may take, cover included, as the fax renderer lays it out:
    # a letter padded with line breaks would otherwise hold an official's line for hours.
    max_fax_pages: int = Field(default=5, gt=0, le=50)
    targets: tuple[Target, ...] = Field(min_length=1)
    pacing: Pacing = Pacing()
    # Domains a supporter's own post may link to (with their subdomains); none by default.
    link_domains: tuple[str, ...] = ()
    # Actions the campaign aims for: the pages show progress towards it (none: no bar).
    goal: int | None = Field(default=None, gt=0)
    # Hold letters and posts supporters wrote or edited until an operator approves them
    # (untouched sample letters go straight out); off by default.
    review_own_letters: bool = False
    # Whether an email to an official carries the supporter's address in Reply-To:
    # "never"; "ask" (a box on the form, unticked); "always" (every appeal's emails wait
    # for it). Either way the address goes only once its owner followed the signed link
    # sent to it, and only to the officials of the appeal it was confirmed for.
    reply_to_supporter: Literal["never", "ask", "always"] = "ask"
    # The sites whose pages may show this campaign's form in an iframe (/c/<id>/embed), as
    # origins: "https://www.example.org". None: no other site may frame it.
    embed_origins: tuple[str, ...] = ()
    # The supporter may write their own subject line (up to max_subject_chars).
    editable_subject: bool = False
    max_subject_chars: int = Field(default=150, gt=0, le=MAX_SUBJECT_CHARS)
    # How a supporter's X post goes out: "own_account" (from their own X account, once
    # they connect it; a prepared post for them to send themselves if they do not or
    # cannot), "hand_off" (always that prepared post), or "organisation" (from the
    # organisation's account, within X's automation rules: see the README).
    x_mode: Literal["own_account", "hand_off", "organisation"] = "own_account"
    # The title and summary in the interface's other languages (the pages fall back to
    # the ones above).
    text: dict[str, CampaignText] = {}

    @field_validator("letter")
    @classmethod
    def _languages_are_codes(cls, value: dict[str, Letter]) -> dict[str, Letter]:
        for lang in value:
            if not is_language_code(lang):
                raise ValueError(f"{lang!r} is not a language code such as 'en' or 'zh'")
        return value

    def title_in(self, language: str) -> str:
        found = self.text.get(language)
        return found.title if found is not None else self.title

    def summary_in(self, language: str) -> str:
        found = self.text.get(language)
        return found.summary if found is not None and found.summary else self.summary

    def organisation_in(self, language: str) -> str:
        found = self.text.get(language)
        return found.organisation if found is not None and found.organisation else self.organisation

    @field_validator("embed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not re.fullmatch(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(
                    f"{origin!r} is not an origin; write it as https://www.example.org (a "
                    "scheme and a host, and a port if not the usual one; no path)"
                )
        return value

    @field_validator("tweet")
    @classmethod
    def _tweet_fields(cls, value: str) -> str:
        check_merge_fields("tweet", value)
        return value

    def tweet_in(self, language: str) -> str:
        """The sample post for a letter in ``language``."""
        letter = self.letter.get(language)
        return letter.tweet if letter is not None and letter.tweet else self.tweet

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        for lang, letter in self.letter.items():
            if letter.translation_of is not None and letter.translation_of not in self.letter:
                raise ValueError(
                    f"letter.{lang}.translation_of {letter.translation_of!r} names no "
                    f"[letter.{letter.translation_of}] section"
                )
        for target in self.targets:
            for lang in target.salutations:
                if not is_language_code(lang):
                    raise ValueError(
                        f"targets {target.id}: salutations key {lang!r} is not a language code"
                    )
        if self.default_language not in self.letter:
            raise ValueError(
                f"default_language {self.default_language!r} has no "
                f"[letter.{self.default_language}] section"
            )
        ids = [t.id for t in self.targets]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"target ids must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def closes_at(self) -> dt.datetime:
        """The deadline day is the last open day (UTC); the campaign closes at the next midnight."""
        next_day = self.deadline + dt.timedelta(days=1)
        return dt.datetime.combine(next_day, dt.time(), tzinfo=dt.UTC)

    def is_open(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.UTC)) < self.closes_at

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)

    # ------------------------------------------------------------ the sample letter

    def sample_language(self, *wanted: str | None) -> str:
        """The first language of ``wanted`` the campaign has a sample letter in (a page
        asks for the one in ``?letter=``, then its own), else the campaign's own."""
        return next((code for code in wanted if code in self.letter), self.default_language)

    def sample_letter(self, language: str | None) -> Letter:
        """The sample letter in ``language``, or in the campaign's own language."""
        return self.letter[self.sample_language(language)]

    def is_sample(self, text: str, language: str) -> bool:
        """Whether ``text`` is the sample letter in ``language`` unchanged (line endings
        and the blank space around it aside): the words are the campaign's, not the
        supporter's own."""
        sample = self.letter.get(language)
        return sample is not None and text.replace("\r\n", "\n").strip() == sample.body.strip()

    # ------------------------------------------------------------ officials × channels

    def choose_pairs(
        self,
        targets: Sequence[str] = (),
        channels: Sequence[str] = (),
        picked: Sequence[tuple[str, str]] = (),
    ) -> list[Pair]:
        """The (official, channel) pairs an appeal is delivered to: the ``picked`` pairs
        exactly (a page's checkboxes), or every chosen channel of every chosen official
        (none chosen: all of them). ChoiceError for an unknown official or channel, a
        channel an official named with it lacks, or a choice that reaches no one."""
        if picked:
            pairs: list[Pair] = []
            for target_id, channel in dict.fromkeys(picked):
                pairs.extend(
                    fan_out(
                        self.targets_named([target_id]), channels_named([channel]), explicit=True
                    )
                )
            return pairs
        chosen = self.targets_named(targets) if targets else list(self.targets)
        named = channels_named(channels) if channels else None
        return fan_out(chosen, named, explicit=bool(targets))

    def targets_named(self, wanted: Sequence[str]) -> list[Target]:
        """The officials ``wanted`` names (each once), or ChoiceError naming an unknown one."""
        chosen: list[Target] = []
        for target_id in dict.fromkeys(wanted):
            target = self.target(target_id)
            if target is None:
                raise unknown_target(self.id, target_id, self.targets)
            chosen.append(target)
        return chosen
