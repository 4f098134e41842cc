"""What fax gateways call: their status callbacks (Phaxio, Telnyx, Sinch) and the signed
link from which a gateway fetches a fax's PDF (Telnyx)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from dispatcher.channels.fax import fax_link_key
from dispatcher.channels.phaxio import verify_phaxio_signature
from dispatcher.channels.sinch import callback_delivery
from dispatcher.channels.telnyx import verify_telnyx_signature
from dispatcher.service.callbacks import (
    apply_fax_callback,
    apply_sinch_callback,
    apply_telnyx_event,
    parse_fax_callback,
    parse_telnyx_event,
)
from dispatcher.service.media import fax_document
from dispatcher.web.deps import ContextDep, WebContext
from dispatcher.web.errors import ApiError
from dispatcher.web.schemas import CallbackOut, errors

router = APIRouter(tags=["provider webhooks"])
# The body limit for /webhooks/ (see BodyLimit in create_app).
MAX_CALLBACK_BYTES = 1024 * 1024


@router.post("/webhooks/fax", response_model=CallbackOut, responses=errors(401, 404, 413, 422))
async def fax_callback(request: Request, context: ContextDep) -> CallbackOut:
    """The fax gateway's signed status callback, settling the fax's delivery as polling would.

    Phaxio (``X-Phaxio-Signature``, form posts) or Telnyx (``telnyx-signature-ed25519``
    over the timestamp and body), as DISPATCHER_FAX__PROVIDER says. 401 for a missing or
    wrong signature or a timestamp too far off (nothing changes); 404 when callbacks are
    not configured. Replays, duplicates and late callbacks are accepted and change nothing.
    """
    if context.settings.fax.provider == "telnyx":
        return await _telnyx_webhook(request, context)
    if context.settings.fax.provider == "sinch":
        raise ApiError(404, "Sinch calls back at the URL given with each fax, not here")
    return await _phaxio_callback(request, context)


@router.post("/webhooks/fax/sinch/{token}", response_model=CallbackOut, responses=errors(404, 413))
async def sinch_callback(token: str, context: ContextDep) -> CallbackOut:
    """A Sinch fax callback: only a trigger. The token names the delivery (404 when it is
    not one we made); Sinch is then asked about that delivery's fax, and what the callback
    says is never believed, so a forged or replayed one changes nothing."""
    settings = context.settings
    delivery_id = callback_delivery(fax_link_key(settings), token)
    if settings.fax.provider != "sinch" or delivery_id is None:
        raise ApiError(404, "no such fax callback")
    changed = await apply_sinch_callback(context.service, settings, delivery_id)
    return CallbackOut(received=True, changed=changed)


@router.get(
    "/webhooks/fax/media/{token}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **errors(404)},
)
async def fax_media(token: str, context: ContextDep) -> Response:
    """The PDF of a fax on its way, for the gateway that fetches it by the signed link the
    fax was sent with. 404 for a link that is unsigned, changed, expired or spent."""
    pdf = await fax_document(context.service, context.settings, token)
    return Response(pdf, media_type="application/pdf", headers={"Cache-Control": "no-store"})


async def _phaxio_callback(request: Request, context: WebContext) -> CallbackOut:
    fax_settings = context.settings.fax
    token = fax_settings.callback_token.get_secret_value() if fax_settings.callback_token else ""
    if not token or not fax_settings.callback_url:
        raise ApiError(
            404,
            "fax callbacks are disabled: set DISPATCHER_FAX__CALLBACK_URL and "
            "DISPATCHER_FAX__CALLBACK_TOKEN",
        )
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    async with request.form() as form:  # closes uploaded parts' temporary files
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[name] = await value.read()
            else:
                fields[name] = value
    signature = request.headers.get("x-phaxio-signature", "")
    if not signature or not verify_phaxio_signature(
        token, fax_settings.callback_url, fields, files, signature
    ):
        raise ApiError(401, "missing or invalid X-Phaxio-Signature")
    fax = parse_fax_callback(fields.get("fax", ""))
    changed = await apply_fax_callback(context.service, fax)
    return CallbackOut(received=True, changed=changed)


async def _telnyx_webhook(request: Request, context: WebContext) -> CallbackOut:
    public_key = context.settings.fax.webhook_public_key
    if not public_key:
        raise ApiError(404, "fax webhooks are disabled: set DISPATCHER_FAX__WEBHOOK_PUBLIC_KEY")
    body = await request.body()
    signature = request.headers.get("telnyx-signature-ed25519", "")
    timestamp = request.headers.get("telnyx-timestamp", "")
    if not verify_telnyx_signature(public_key, timestamp, body, signature):
        raise ApiError(
            401, "missing or invalid telnyx-signature-ed25519, or telnyx-timestamp too far off"
        )
    event_type, payload = parse_telnyx_event(body)
    changed = await apply_telnyx_event(context.service, event_type, payload)
    return CallbackOut(received=True, changed=changed)
