"""The administrator's commands on the database: migrate, purge a campaign, back up."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import make_url

from dispatcher.output import out
from dispatcher.runtime import open_service
from dispatcher.service.retention import backup, purge_campaign
from dispatcher.settings import Settings


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings):
        pass
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    out.print(f"Schema is up to date in {shown}")
    return 0


async def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings) as service:
        purged = await purge_campaign(service, args.campaign, older_than_days=args.older_than)
    print(
        f"Removed the personal data of {purged.appeals} appeal(s) in {args.campaign} "
        f"({purged.supporters} supporter(s) with nothing left elsewhere, "
        f"{purged.reported} self-reported action(s)); the counts are unchanged."
    )
    if purged.pending:
        print(f"Kept {purged.pending} appeal(s) with a delivery still pending; purge again later.")
    return 0


async def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings) as service:
        await backup(service, args.to)
    print(f"Backed up to {args.to}; to restore, stop every process and put it in place.")
    return 0
