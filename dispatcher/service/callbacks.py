"""Providers' status callbacks: settling a delivery exactly as polling would."""

from __future__ import annotations

import itertools
import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from dispatcher.channels.fax import fax_verdict
from dispatcher.models import utcnow
from dispatcher.outcomes import confirmation_update
from dispatcher.service.context import Service
from dispatcher.service.errors import invalid

# A fax object is a few levels deep (the fax, its recipients, their fields); far deeper
# JSON is not a fax, and Python's parser would recurse on it until it fails.
MAX_FAX_DEPTH = 16
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# One line of printable text, as a gateway writes a status, code or message.
_Text = Annotated[StrictStr, Field(max_length=2000, pattern=r"^[^\x00-\x1f\x7f]*$")]


class FaxStatus(BaseModel):
    """The fields of a gateway's fax object that settle a delivery, with their types; any
    other field is kept as it came."""

    model_config = ConfigDict(extra="allow")
    id: StrictInt | Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")] | None = None
    status: _Text | None = None
    num_pages: StrictInt | None = None
    error_type: _Text | None = None
    error_code: StrictInt | _Text | None = None
    error_message: _Text | None = None


def parse_fax_callback(text: str) -> dict[str, Any]:
    """A callback's ``fax`` field as a fax object; ServiceError (invalid, naming the field
    and what is accepted) for anything else: not JSON, not an object, nested deeper than
    MAX_FAX_DEPTH, or a settling field of the wrong type."""
    steps = (_DEPTH_STEP.get(ch, 0) for ch in _STRINGS.sub("", text))
    depth = max(itertools.accumulate(steps, initial=0))
    if depth > MAX_FAX_DEPTH:
        raise invalid(
            "fax",
            f"field 'fax' is nested {depth} levels deep; at most {MAX_FAX_DEPTH} are accepted",
        )
    try:
        fax = json.loads(text)
    except ValueError:
        raise invalid("fax", "field 'fax' is not a JSON fax object") from None
    if not isinstance(fax, dict):
        raise invalid("fax", "field 'fax' is not a JSON fax object")
    try:
        FaxStatus.model_validate(fax)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = f"fax.{first['loc'][0]}"  # the field, not the union member it tried last
        raise invalid(
            where,
            f"{where} {first.get('input')!r} is not accepted: {first['msg']} (a fax object's "
            "id is a number or a short token; status, error_type and error_message are one "
            "line of text; error_code a number or text; num_pages a number)",
        ) from None
    return fax


async def apply_fax_callback(service: Service, fax: dict[str, Any]) -> bool:
    """Settle the delivery a verified fax status callback is about.

    Unknown fax ids, faxes not awaiting confirmation (settled, re-sent) and non-final
    statuses change nothing. Returns whether a delivery changed.
    """
    fax_id = fax.get("id")
    verdict = fax_verdict(fax, note=", confirmed by callback")
    if fax_id is None or verdict is None:
        return False
    delivery = await service.store.awaiting_fax(str(fax_id))
    if delivery is None:
        return False
    update = confirmation_update(
        service.policy, delivery, verdict, now=utcnow(), poll_seconds=service.poll_seconds
    )
    return await service.store.settle_awaiting(update, str(fax_id))
