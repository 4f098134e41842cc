"""The parts of an appeal as the intake's checks pass them along."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Supporter:
    name: str
    email: str
    country: str | None


@dataclass(frozen=True, slots=True)
class Letter:
    language: str
    subject: str
    body: str
    own: bool
    own_subject: bool = False
