"""Actions supporters took themselves (a call, a posted letter), counted as self-reported."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.service.catalog import open_campaign
from dispatcher.service.context import Service
from dispatcher.service.errors import invalid
from dispatcher.service.validation import check_email, check_name

REPORTED_KINDS = ("call", "letter")


@dataclass(frozen=True, slots=True)
class ReportedActionRequest:
    campaign_id: str
    target_id: str
    kind: str
    supporter_name: str | None = None
    supporter_email: str | None = None


async def report_action(service: Service, request: ReportedActionRequest) -> int:
    """Store one self-reported action; returns its id. ServiceError for a bad request."""
    campaign = open_campaign(service.catalog, request.campaign_id)
    if campaign.target(request.target_id) is None:
        known = ", ".join(t.id for t in campaign.targets)
        raise invalid("target", f"unknown target {request.target_id!r}; known targets: {known}")
    if request.kind not in REPORTED_KINDS:
        raise invalid(
            "kind", f"unknown action {request.kind!r}; accepted: {', '.join(REPORTED_KINDS)}"
        )
    name = check_name("supporter.name", request.supporter_name or "", required=False)
    email = None
    if request.supporter_email and request.supporter_email.strip():
        email = check_email("supporter.email", request.supporter_email)
    return await service.store.record_reported_action(
        campaign_id=campaign.id,
        target_id=request.target_id,
        kind=request.kind,
        supporter_name=name,
        supporter_email=email,
    )
