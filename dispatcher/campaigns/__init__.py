"""Campaigns: one TOML file each in the campaigns directory, validated on load.

``model`` is the campaign and what it decides for an appeal (its sample letters, the
officials and channels a choice reaches), ``parts`` its letters and officials, ``choices``
how a supporter's choice fans out, ``files`` the loading of the campaigns directory.
"""

from dispatcher.campaigns.choices import ChoiceError, Pair
from dispatcher.campaigns.files import CampaignCatalog, CampaignError, load_campaign
from dispatcher.campaigns.model import Campaign
from dispatcher.campaigns.parts import (
    MAX_SUBJECT_CHARS,
    CampaignText,
    Letter,
    Pacing,
    Target,
    TargetText,
)

__all__ = [
    "MAX_SUBJECT_CHARS",
    "Campaign",
    "CampaignCatalog",
    "CampaignError",
    "CampaignText",
    "ChoiceError",
    "Letter",
    "Pacing",
    "Pair",
    "Target",
    "TargetText",
    "load_campaign",
]
