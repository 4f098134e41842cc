"""Campaign files: one TOML file each in the campaigns directory, loaded and validated
once (a problem names the file, the field and what is wrong)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from dispatcher.campaigns.model import Campaign
from dispatcher.settings import ConfigurationError


class CampaignError(ConfigurationError):
    """A campaign file is missing, unreadable or invalid; the message names file and field."""


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
