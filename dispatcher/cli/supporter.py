"""What a supporter does from the command line: ``dispatcher send``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dispatcher.cli.usage import UsageError
from dispatcher.output import print_receipt
from dispatcher.runtime import open_service
from dispatcher.service.intake import submit_appeal
from dispatcher.service.validation import AppealRequest
from dispatcher.settings import Settings


async def cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    message = None
    if args.message_file is not None:
        try:
            message = Path(args.message_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --message-file {args.message_file!r}: {exc}") from exc
    request = AppealRequest(
        campaign_id=args.campaign,
        supporter_name=args.name,
        supporter_email=args.email,
        supporter_country=args.country,
        targets=args.target or (),
        channels=args.channel or (),
        message=message,
        tweet=args.tweet,
        language=args.language,
        reply_to=args.reply_to,
    )
    async with open_service(settings) as service:
        receipt = await submit_appeal(service, request)
    print_receipt(receipt)
    return 0
