"""What a supporter does from the command line: ``dispatcher send``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dispatcher.cli.usage import UsageError
from dispatcher.output import print_receipt
from dispatcher.runtime import open_service
from dispatcher.service.intake import AppealRequest, Rejected, submit_appeal
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
        result = await submit_appeal(service, request)
    if isinstance(result, Rejected):
        raise result.first  # said as every refusal is: one sentence (see main)
    assert result.receipt is not None  # given to an operator's tool (the request's via)
    print_receipt(result.receipt)
    return 0
