"""Providers' status callbacks: settling a delivery exactly as polling would.

Phaxio's and Telnyx's callbacks are signed (the route checks the signature), so what they
say settles the delivery. Sinch's are not: its callback only names the delivery (by a
token the route checked), and Sinch is asked what became of that delivery's fax.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from dispatcher.channels.base import DeliveryError, SendResult
from dispatcher.channels.phaxio import fax_verdict
from dispatcher.channels.registry import fax_provider
from dispatcher.channels.telnyx import telnyx_verdict
from dispatcher.logs import get_logger
from dispatcher.models import Channel, DeliveryStatus, utcnow
from dispatcher.outcomes import confirmation_update
from dispatcher.service.context import Service
from dispatcher.service.errors import invalid
from dispatcher.service.media import fax_on_its_way
from dispatcher.settings import Settings

# A fax object is a few levels deep (the fax, its recipients, their fields); far deeper
# JSON is not a fax, and Python's parser would recurse on it until it fails.
log = get_logger(__name__)

MAX_FAX_DEPTH = 16
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# One line of printable text, as a gateway writes a status, code or message.
_Text = Annotated[StrictStr, Field(max_length=2000, pattern=r"^[^\x00-\x1f\x7f]*$")]
_FaxId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
# The Telnyx events that end a fax; the others (queued, media processed…) change nothing.
TELNYX_FINAL_EVENTS = ("fax.delivered", "fax.failed")


class FaxStatus(BaseModel):
    """The fields of a gateway's fax object that settle a delivery, with their types; any
    other field is kept as it came."""

    model_config = ConfigDict(extra="allow")
    id: StrictInt | _FaxId | None = None
    status: _Text | None = None
    num_pages: StrictInt | None = None
    error_type: _Text | None = None
    error_code: StrictInt | _Text | None = None
    error_message: _Text | None = None


def _json_object(text: str, field: str) -> dict[str, Any]:
    """``text`` as a JSON object; ServiceError (invalid, naming ``field``) for anything
    else, or for nesting deeper than MAX_FAX_DEPTH."""
    steps = (_DEPTH_STEP.get(ch, 0) for ch in _STRINGS.sub("", text))
    depth = max(itertools.accumulate(steps, initial=0))
    if depth > MAX_FAX_DEPTH:
        raise invalid(
            field,
            f"field '{field}' is nested {depth} levels deep; at most {MAX_FAX_DEPTH} are accepted",
        )
    try:
        value = json.loads(text)
    except ValueError:
        raise invalid(field, f"field '{field}' is not a JSON object") from None
    if not isinstance(value, dict):
        raise invalid(field, f"field '{field}' is not a JSON object")
    return value


def _checked(model: type[BaseModel], value: dict[str, Any], where: str, accepted: str) -> None:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = f"{where}.{first['loc'][0]}"  # the field, not the union member it tried last
        raise invalid(
            field, f"{field} {first.get('input')!r} is not accepted: {first['msg']} ({accepted})"
        ) from None


def parse_fax_callback(text: str) -> dict[str, Any]:
    """A Phaxio callback's ``fax`` field as a fax object; ServiceError (invalid, naming the
    field and what is accepted) for anything else: not JSON, not an object, nested deeper
    than MAX_FAX_DEPTH, or a settling field of the wrong type."""
    fax = _json_object(text, "fax")
    _checked(
        FaxStatus,
        fax,
        "fax",
        "a fax object's id is a number or a short token; status, error_type and "
        "error_message are one line of text; error_code a number or text; num_pages a number",
    )
    return fax


class TelnyxPayload(BaseModel):
    """The fields of a Telnyx fax event's payload that settle a delivery."""

    model_config = ConfigDict(extra="allow")
    fax_id: _FaxId
    status: _Text | None = None
    failure_reason: _Text | None = None
    page_count: StrictInt | None = None


def parse_telnyx_event(body: bytes) -> tuple[str, dict[str, Any]]:
    """A Telnyx webhook's event type and payload; ServiceError (invalid) when the body is
    not an event whose final payload names a fax."""
    event = _json_object(body.decode("utf-8", "replace"), "data")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("event_type"), str):
        raise invalid("data.event_type", "a Telnyx event has data.event_type and data.payload")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise invalid("data.payload", "a Telnyx event has data.payload (an object)")
    if data["event_type"] in TELNYX_FINAL_EVENTS:
        _checked(
            TelnyxPayload,
            payload,
            "data.payload",
            "fax_id is a short token; status and failure_reason one line of text; "
            "page_count a number",
        )
    return data["event_type"], payload


async def apply_fax_callback(service: Service, fax: dict[str, Any]) -> bool:
    """Settle the delivery a verified Phaxio status callback is about.

    Unknown fax ids, faxes not awaiting confirmation (settled, re-sent) and non-final
    statuses change nothing. Returns whether a delivery changed.
    """
    fax_id = fax.get("id")
    verdict = fax_verdict(fax, note=", confirmed by callback")
    if fax_id is None or verdict is None:
        return False
    tagged = str((fax.get("tags") or {}).get("delivery_id", ""))
    return await _settle(service, str(fax_id), verdict, int(tagged) if tagged.isdigit() else None)


async def apply_telnyx_event(service: Service, event_type: str, payload: dict[str, Any]) -> bool:
    """Settle the delivery a verified Telnyx ``fax.delivered`` or ``fax.failed`` is about
    (other events, unknown or settled faxes change nothing). Returns whether one changed."""
    if event_type not in TELNYX_FINAL_EVENTS:
        return False
    final = {**payload, "status": event_type.removeprefix("fax.")}
    verdict = telnyx_verdict(final, note=", confirmed by webhook")
    if verdict is None:
        return False
    return await _settle(service, str(payload["fax_id"]), verdict)


async def apply_sinch_callback(service: Service, settings: Settings, delivery_id: int) -> bool:
    """A Sinch callback for this delivery (its token checked): ask Sinch about the
    delivery's fax, as polling would, and settle it if Sinch says it is final. What the
    callback itself said is never used, so a forged or replayed one changes nothing."""
    entry = await service.store.get_delivery(delivery_id)
    if (
        entry is None
        or entry.channel is not Channel.FAX
        or entry.status is not DeliveryStatus.AWAITING_CONFIRMATION
        or not entry.provider_ref
    ):
        return False
    delivery = await service.store.awaiting_fax(entry.provider_ref)
    if delivery is None or delivery.id != delivery_id:
        return False
    adapter = fax_provider(settings.fax.provider).build(settings, service.rehearsing(Channel.FAX))
    try:
        verdict: SendResult | DeliveryError = await adapter.check(delivery)
    except DeliveryError as exc:
        verdict = exc
    finally:
        await adapter.aclose()
    if isinstance(verdict, SendResult) and not verdict.confirmed:
        return False  # still on its way (or Sinch did not answer): polling goes on
    return await _settle(service, entry.provider_ref, verdict)


async def _settle(
    service: Service,
    fax_id: str,
    verdict: SendResult | DeliveryError,
    delivery_id: int | None = None,
) -> bool:
    """Settle the fax awaiting confirmation as ``fax_id``; whether it changed.

    A callback can overtake the worker's record of the gateway's answer (a fax done in
    seconds, a gateway that calls back before it answers). When the callback names its
    delivery (``delivery_id``) and that fax is still being sent, it is answered at once
    and settled in the background once the answer is recorded (the gateway is not kept
    waiting: it may be holding its answer until we reply)."""
    delivery = await service.store.awaiting_fax(fax_id)
    if delivery is None:
        if delivery_id is not None:
            task = asyncio.create_task(_settle_when_recorded(service, fax_id, verdict, delivery_id))
            _LATER.add(task)
            task.add_done_callback(_LATER.discard)
        return False
    update = confirmation_update(
        service.policy, delivery, verdict, now=utcnow(), poll_seconds=service.poll_seconds
    )
    return await service.store.settle_awaiting(update, fax_id)


# Callbacks settled once their fax's answer is recorded (kept: a task needs a reference).
_LATER: set[asyncio.Task[None]] = set()


async def _settle_when_recorded(
    service: Service, fax_id: str, verdict: SendResult | DeliveryError, delivery_id: int
) -> None:
    try:
        found = await fax_on_its_way(service, delivery_id)
        if found is not None and found.provider_ref == fax_id:
            await _settle(service, fax_id, verdict)
    except Exception as exc:  # the poll settles it instead
        log.warning("an early fax callback could not be applied", fax_id=fax_id, error=repr(exc))
