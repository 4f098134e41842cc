"""Provider webhooks: the fax gateway's status callback (Phaxio-compatible, signed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from dispatcher.channels.phaxio import verify_phaxio_signature
from dispatcher.service.callbacks import apply_fax_callback, parse_fax_callback
from dispatcher.web.deps import ContextDep
from dispatcher.web.errors import ApiError
from dispatcher.web.schemas import CallbackOut, errors

router = APIRouter(tags=["provider webhooks"])
# The body limit for /webhooks/ (see BodyLimit in create_app).
MAX_CALLBACK_BYTES = 1024 * 1024


@router.post("/webhooks/fax", response_model=CallbackOut, responses=errors(401, 404, 413, 422))
async def fax_callback(request: Request, context: ContextDep) -> CallbackOut:
    """Verify ``X-Phaxio-Signature`` and settle the fax's delivery as polling would.

    401 for a missing or wrong signature (nothing changes); 404 when callbacks are not
    configured. Replays, duplicates and late callbacks are accepted and change nothing.
    """
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
