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
    supporter_email: str
    supporter_name: str | None = None


@dataclass(frozen=True, slots=True)
class ReportedAction:
    id: int
    already_counted: bool  # that supporter had reported this action to this official


async def report_action(service: Service, request: ReportedActionRequest) -> ReportedAction:
    """Count a self-reported action once per supporter (email), official and kind: the
    count is shared with officials, so repeating a report must not raise it. ServiceError
    for a bad request."""
    campaign = open_campaign(service.catalog, request.campaign_id)
    if campaign.target(request.target_id) is None:
        known = ", ".join(t.id for t in campaign.targets)
        raise invalid(
            "target",
            f"unknown target {request.target_id!r}; known targets: {known}",
            "unknown_target",
        )
    if request.kind not in REPORTED_KINDS:
        raise invalid(
            "kind",
            f"unknown action {request.kind!r}; accepted: {', '.join(REPORTED_KINDS)}",
            "unknown_kind",
        )
    name = check_name("supporter.name", request.supporter_name or "", required=False)
    if not request.supporter_email.strip():
        raise invalid(
            "supporter.email",
            "supporter.email is required: each supporter's report is counted once",
            "empty",
        )
    email = check_email("supporter.email", request.supporter_email)
    action_id, new = await service.store.record_reported_action(
        campaign_id=campaign.id,
        target_id=request.target_id,
        kind=request.kind,
        supporter_name=name,
        supporter_email=email,
    )
    return ReportedAction(action_id, already_counted=not new)
