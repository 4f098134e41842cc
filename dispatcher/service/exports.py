"""What operators take away: every filtered delivery, and the supporter list (searchable),
as CSV or JSON. Each export is recorded in the audit log."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from dispatcher.models import LogEntry, format_time
from dispatcher.service import audit
from dispatcher.service.catalog import find_campaign
from dispatcher.service.context import Service
from dispatcher.service.errors import invalid
from dispatcher.service.log import LogFilter
from dispatcher.service.operator import describe
from dispatcher.service.views import DeliveryView
from dispatcher.store.operators import SupporterRow

__all__ = ["FORMATS", "SupporterRow", "deliveries_export", "supporters", "supporters_export"]

FORMATS = ("csv", "json")
DELIVERY_COLUMNS = [
    "id", "appeal_id", "campaign", "target", "channel", "address", "status", "attempts",
    "updated_at", "error_class", "error_code", "error_message", "provider_ref", "settlement",
]  # fmt: skip
SUPPORTER_COLUMNS = [
    "campaign", "name", "email", "country", "appeals", "last_appeal_at", "contact_ok",
    "source", "utm_source", "utm_medium", "utm_campaign",
]  # fmt: skip


def _format(value: str) -> str:
    if value not in FORMATS:
        raise invalid("format", f"format {value!r} is not one of: {', '.join(FORMATS)}")
    return value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    # A cell that a spreadsheet would read as a formula is kept as text (see _cell).
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


# Where a spreadsheet may start a cell: the text's start, or after a separator it may
# split on (comma, semicolon in many European locales, tab, pipe, a line break), spaces
# allowed between. A cell starting with = + - @ (or a tab or CR before one) is a formula.
_FORMULA_START = re.compile(r"(?:^|(?<=[,;\t|\r\n]))(?=[ ]*[=+\-@\t\r])")


def _cell(value: Any) -> Any:
    """A text cell with a ' before every place a formula could start: kept as text
    whatever separator the spreadsheet that opens the file splits on."""
    if isinstance(value, str):
        return _FORMULA_START.sub("'", value)
    return "" if value is None else value


def _delivery_row(e: LogEntry) -> list[Any]:
    error = e.last_error
    return [
        e.id, e.appeal_id, e.campaign_id, e.target_id, e.channel.value, e.address,
        e.status.value, e.attempts, format_time(e.updated_at),
        error.error_class if error else None, error.code if error else None,
        error.message if error else None, e.provider_ref,
        e.settlement.value if e.settlement else None,
    ]  # fmt: skip


async def deliveries_export(service: Service, log_filter: LogFilter, fmt: str, *, by: str) -> str:
    """Every delivery the filter selects, oldest first, one row each."""
    fmt = _format(fmt)
    entries = await service.store.list_deliveries(
        campaign_id=log_filter.campaign,
        status=log_filter.status,
        channel=log_filter.channel,
        target_id=log_filter.target,
    )
    entries.sort(key=lambda e: e.id)
    await audit.record(
        service, by, "export", f"{len(entries)} deliveries as {fmt} ({describe(log_filter)})"
    )
    if fmt == "json":
        views = [DeliveryView.of(e).model_dump(mode="json", by_alias=True) for e in entries]
        return json.dumps({"deliveries": views}, ensure_ascii=False, indent=1)
    return _csv(DELIVERY_COLUMNS, (_delivery_row(e) for e in entries))


async def supporters(
    service: Service, *, campaign: str | None = None, search: str = "", limit: int | None = 200
) -> list[SupporterRow]:
    """Supporters by campaign, most recent first; ``search``: part of a name or email."""
    if campaign is not None:
        find_campaign(service.catalog, campaign)  # refuses an unknown campaign
    return await service.store.list_supporters(
        campaign_id=campaign, search=search.strip() or None, limit=limit
    )


async def supporters_export(
    service: Service, fmt: str, *, campaign: str | None, search: str, by: str
) -> str:
    fmt = _format(fmt)
    rows = await supporters(service, campaign=campaign, search=search, limit=None)
    what = ", ".join(
        part for part in (f"campaign={campaign}" if campaign else "", f"search={search!r}"
                          if search else "") if part
    ) or "all campaigns"  # fmt: skip
    await audit.record(service, by, "export", f"{len(rows)} supporters as {fmt} ({what})")
    values = [
        [r.campaign_id, r.name, r.email, r.country, r.appeals, format_time(r.last_appeal_at),
         r.contact_ok, *r.sources]
        for r in rows
    ]  # fmt: skip
    if fmt == "json":
        items = [dict(zip(SUPPORTER_COLUMNS, row, strict=True)) for row in values]
        return json.dumps({"supporters": items}, ensure_ascii=False, indent=1)
    return _csv(SUPPORTER_COLUMNS, values)
