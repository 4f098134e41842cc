"""Interactive API docs at /docs, with Swagger UI served from this process (no CDN).

The Swagger UI assets come with the ``docs`` extra; without them /docs says how to
install them, and the API's description stays at /openapi.json.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, PlainTextResponse, Response

from dispatcher.web.errors import ApiError

router = APIRouter(include_in_schema=False)
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
NOT_INSTALLED = (
    "The API docs page needs the Swagger UI assets, which are not installed: install them "
    "with pip install 'appeal-dispatcher[docs]' (the API's description is at /openapi.json).\n"
)


@functools.cache
def assets() -> Path | None:
    """Where the Swagger UI files are, or None when the ``docs`` extra is not installed."""
    try:
        import swagger_ui_bundle
    except ModuleNotFoundError:
        return None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


@router.get("/docs")
async def swagger_ui() -> Response:
    if assets() is None:
        return PlainTextResponse(NOT_INSTALLED, status_code=404)
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Appeal dispatcher API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> Response:
    folder = assets()
    if folder is None:
        return PlainTextResponse(NOT_INSTALLED, status_code=404)
    if name not in SERVED:
        raise ApiError(404, f"no docs asset {name!r}")
    return FileResponse(folder / name)
