"""Interactive API docs at /docs, with Swagger UI served from this process (no CDN)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from dispatcher.web.errors import ApiError

router = APIRouter(include_in_schema=False)
ASSETS = Path(str(swagger_ui_bundle.swagger_ui_path))
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Appeal dispatcher API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> FileResponse:
    if name not in SERVED:
        raise ApiError(404, f"no docs asset {name!r}")
    return FileResponse(ASSETS / name)
