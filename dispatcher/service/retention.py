"""Retention: once a campaign has closed, its supporters' personal data can go while its
counts (the number shared with officials) stay exactly as they were."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from dispatcher.models import utcnow
from dispatcher.service.catalog import find_campaign
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.store.purge_sql import Purged


async def purge_campaign(
    service: Service, campaign_id: str, *, older_than_days: float = 0
) -> Purged:
    """Remove names, addresses, countries, letters, posts and idempotency keys from the
    campaign's appeals (made more than ``older_than_days`` ago) whose deliveries have all
    settled, and from its self-reported actions. ServiceError while the campaign is open."""
    campaign = find_campaign(service.catalog, campaign_id)
    now = utcnow()
    if campaign.is_open(now):
        raise ServiceError(
            ErrorKind.CONFLICT,
            f"campaign {campaign.id} is open until {campaign.deadline.isoformat()}; its "
            "supporters' data can be purged once it has closed",
            "campaign",
        )
    if older_than_days < 0:
        raise ServiceError(
            ErrorKind.INVALID,
            f"--older-than {older_than_days:g} is negative; give a number of days, 0 or more",
            "older_than",
        )
    # A key for this purge only, then forgotten: the pseudonyms cannot be recomputed.
    key = secrets.token_bytes(32)
    before = now - dt.timedelta(days=older_than_days)
    return await service.store.purge_campaign(campaign.id, created_before=before, key=key)


async def backup(service: Service, to: Path) -> None:
    """Copy a SQLite database, in use or not, to ``to`` (a new file). ServiceError for an
    existing file, or for PostgreSQL (whose tool for this is pg_dump)."""
    if to.exists():
        raise ServiceError(
            ErrorKind.CONFLICT, f"{to} exists already; give the path of a new file", "to"
        )
    if service.store.dialect != "sqlite":
        raise ServiceError(
            ErrorKind.INVALID,
            "backup copies SQLite databases; for PostgreSQL use "
            "pg_dump --format=custom --file BACKUP DATABASE (see the README)",
            "database",
        )
    to.parent.mkdir(parents=True, exist_ok=True)
    await service.store.backup_to(to)
