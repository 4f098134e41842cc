"""HTML pages: the supporter's one-step page and status page, the operator dashboard."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
