"""What a campaign is made of: its letters, its officials (targets) and how each is
reached, its words in other languages, its send rates; and the checks of the values a
campaign file gives them (phone numbers, addresses, X handles, merge fields)."""

from __future__ import annotations

import hashlib
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dispatcher.fax_hours import FaxHours, parse_window, time_zone
from dispatcher.merge_fields import FIELDS, unknown_fields
from dispatcher.models import Channel


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


def check_merge_fields(where: str, text: str) -> None:
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
                check_merge_fields(where, text)
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
