"""Campaigns: one TOML file each in the campaigns directory, validated on load."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dispatcher.fax_hours import FaxHours, parse_window, time_zone
from dispatcher.merge_fields import FIELDS, unknown_fields
from dispatcher.models import Channel, is_language_code
from dispatcher.settings import ConfigurationError


class CampaignError(ConfigurationError):
    """A campaign file is missing, unreadable or invalid; the message names file and field."""


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            f"{value!r} is not an international phone number (write it as +<country code> …)"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from exc


def _handle(value: str) -> str:
    handle = value.strip().removeprefix("@")
    if not handle or len(handle) > 15 or not handle.replace("_", "").isalnum():
        raise ValueError(f"{value!r} is not an X handle (1-15 letters, digits or _)")
    return "@" + handle


PhoneNumber = Annotated[str, AfterValidator(_e164)]
EmailAddress = Annotated[str, AfterValidator(_email)]
Handle = Annotated[str, AfterValidator(_handle)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


MAX_SUBJECT_CHARS = 200


def _fields_known(where: str, text: str) -> None:
    unknown = unknown_fields(text)
    if unknown:
        accepted = ", ".join("{" + f + "}" for f in FIELDS)
        raise ValueError(
            f"{where} uses {', '.join('{' + f + '}' for f in unknown)}, which is not a merge "
            f"field; accepted: {accepted}"
        )


class Letter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # One subject line, or several (``subjects``): each appeal gets one of them, spread
    # evenly (officials' filters drop identical mail first). Either or both.
    subject: str | None = Field(default=None, min_length=1, max_length=MAX_SUBJECT_CHARS)
    subjects: tuple[Annotated[str, Field(min_length=1, max_length=MAX_SUBJECT_CHARS)], ...] = ()
    body: str = Field(min_length=1)
    # The post on X in this language (unset: the campaign's ``tweet``).
    tweet: str | None = Field(default=None, min_length=1)
    # Set when this letter is a translation: the language code of the original, and who
    # translated it. The page says so beside the letter.
    translation_of: str | None = None
    translated_by: str | None = None
    # What a supporter may say on the phone to the campaign's officials, in this language.
    call_script: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _subject_and_fields(self) -> Letter:
        if self.subject is None and not self.subjects:
            raise ValueError("a letter needs a subject line: subject = '…' or subjects = […]")
        texts = [("subject", self.subject), ("body", self.body), ("tweet", self.tweet),
                 ("call_script", self.call_script),
                 *((f"subjects[{i}]", s) for i, s in enumerate(self.subjects))]  # fmt: skip
        for where, text in texts:
            if text is not None:
                _fields_known(where, text)
        return self

    @property
    def subject_lines(self) -> tuple[str, ...]:
        """Every subject line this letter may go with."""
        return (*((self.subject,) if self.subject else ()), *self.subjects)

    def subject_for(self, key: str) -> str:
        """One of the subject lines, the same for the same ``key`` (the supporter), spread
        evenly over many keys."""
        lines = self.subject_lines
        digest = hashlib.sha256(key.encode()).digest()
        return lines[int.from_bytes(digest[:4], "big") % len(lines)]


class CampaignText(BaseModel):
    """The campaign's title, summary and organisation in another language ([text.zh])."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    summary: str = ""
    organisation: str | None = None


class TargetText(BaseModel):
    """How the pages name an official in another language (text = { zh = {…} })."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    title: str | None = None


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    name: str = Field(min_length=1)
    salutation: str = Field(min_length=1)
    # The salutation in other languages ({zh = "尊敬的…"}): a letter in one of them opens
    # with it; any other language, with ``salutation``.
    salutations: dict[str, str] = {}
    # The name and title the pages show in the interface's other languages.
    text: dict[str, TargetText] = {}
    title: str | None = None
    email: EmailAddress | None = None
    fax: PhoneNumber | None = None
    twitter: tuple[Handle, ...] = ()
    phone: PhoneNumber | None = None
    postal: str | None = None
    # The official's time zone (IANA) and the daily window, local to it, in which their fax
    # line may be called ("08:00-20:00"); without fax_hours, any hour.
    timezone: str | None = None
    fax_hours: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            time_zone(value)
        return value

    @field_validator("fax_hours")
    @classmethod
    def _daily_window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @model_validator(mode="after")
    def _fax_hours_have_a_line_and_a_zone(self) -> Target:
        if self.fax_hours is not None and self.timezone is None:
            raise ValueError(
                "fax_hours needs timezone: the IANA zone the window is local to, such as "
                "timezone = 'Asia/Shanghai'"
            )
        if self.fax_hours is not None and self.fax is None:
            raise ValueError("fax_hours is set but the target has no fax number")
        return self

    @property
    def fax_window(self) -> FaxHours | None:
        """When this target's fax line may be called (None: at any hour)."""
        if self.fax_hours is None or self.timezone is None:
            return None
        return FaxHours.parse(self.fax_hours, self.timezone)

    def address(self, channel: Channel) -> str | None:
        """The address this target has on ``channel`` (handles joined by spaces), or None."""
        if channel is Channel.EMAIL:
            return self.email
        if channel is Channel.FAX:
            return self.fax
        return " ".join(self.twitter) or None

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(c for c in Channel if self.address(c) is not None)

    def name_in(self, language: str) -> str:
        found = self.text.get(language)
        return found.name if found is not None else self.name

    def title_in(self, language: str) -> str | None:
        found = self.text.get(language)
        return found.title if found is not None and found.title else self.title

    def salutation_in(self, language: str) -> str:
        """The salutation for a letter in ``language``."""
        return self.salutations.get(language, self.salutation)


class Pacing(BaseModel):
    """A campaign's own send rates per minute (unset: the deployment's settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email_per_recipient_per_minute: int | None = Field(default=None, ge=0)
    email_per_minute: int | None = Field(default=None, ge=0)
    fax_per_minute: int | None = Field(default=None, ge=0)
    twitter_per_minute: int | None = Field(default=None, ge=0)


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
        _fields_known("tweet", value)
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


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(file)"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def load_campaign(path: Path) -> Campaign:
    """Load and validate one campaign file; raises CampaignError naming file, field and problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CampaignError(f"{path}: cannot read campaign file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{path}: not valid TOML: {exc}") from exc
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        raise CampaignError(f"{path}: {_describe(exc)}") from exc
    if campaign.id != path.stem:
        raise CampaignError(f"{path}: id {campaign.id!r} must match the file name {path.stem!r}")
    return campaign


class CampaignCatalog:
    """All campaigns in a directory, loaded once."""

    def __init__(self, campaigns: dict[str, Campaign]) -> None:
        self._campaigns = campaigns

    @classmethod
    def load(cls, directory: Path) -> CampaignCatalog:
        if not directory.is_dir():
            raise CampaignError(
                f"campaigns directory {str(directory)!r} does not exist "
                "(set DISPATCHER_CAMPAIGNS_DIR to a folder of *.toml campaign files)"
            )
        campaigns = {}
        for path in sorted(directory.glob("*.toml")):
            campaign = load_campaign(path)
            campaigns[campaign.id] = campaign
        return cls(campaigns)

    def __iter__(self) -> Iterator[Campaign]:
        return iter(self._campaigns.values())

    def __len__(self) -> int:
        return len(self._campaigns)

    def get(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    @property
    def ids(self) -> list[str]:
        return sorted(self._campaigns)
