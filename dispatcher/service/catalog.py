"""Finding the campaign a request names: one place for "unknown" and "closed"."""

from __future__ import annotations

import datetime as dt

from dispatcher.campaigns import Campaign, CampaignCatalog
from dispatcher.models import utcnow
from dispatcher.service.errors import ErrorKind, ServiceError


def find_campaign(catalog: CampaignCatalog, campaign_id: str) -> Campaign:
    """The campaign, open or closed; ServiceError (not found) naming the known ones."""
    campaign = catalog.get(campaign_id)
    if campaign is None:
        known = ", ".join(catalog.ids) or "none"
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            f"unknown campaign {campaign_id!r}; known campaigns: {known}",
            "campaign",
        )
    return campaign


def closed_error(campaign: Campaign) -> ServiceError:
    return ServiceError(
        ErrorKind.CLOSED,
        f"campaign {campaign.id!r} closed: its deadline was {campaign.deadline.isoformat()}",
        "campaign",
    )


def open_campaign(
    catalog: CampaignCatalog, campaign_id: str, *, now: dt.datetime | None = None
) -> Campaign:
    """The campaign, if it exists and is open; ServiceError (not found / closed) otherwise."""
    campaign = find_campaign(catalog, campaign_id)
    if not campaign.is_open(now or utcnow()):
        raise closed_error(campaign)
    return campaign
