"""Public JSON endpoints: appeals in, their status out, campaigns and their report."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from dispatcher.render.tweet import MAX_WEIGHTED_LENGTH
from dispatcher.service.appeal_request import AppealRequest, Rejected, Via
from dispatcher.service.catalog import closed_error
from dispatcher.service.forget import forget_appeal
from dispatcher.service.intake import tweet_lengths
from dispatcher.service.reported import ReportedActionRequest, report_action
from dispatcher.service.reporting import CampaignReport, campaign_report
from dispatcher.service.status import AppealStatus, appeal_status
from dispatcher.web.deps import CampaignDep, ContextDep, client_ip
from dispatcher.web.errors import STATUS_OF, ApiError, describe_validation
from dispatcher.web.schemas import (
    AppealAccepted,
    AppealIn,
    CampaignList,
    CampaignOut,
    ReportedActionIn,
    ReportedActionOut,
    TweetIn,
    TweetLengthOut,
    errors,
)
from dispatcher.web.security import read_limited_body

router = APIRouter(prefix="/api", tags=["appeals and campaigns"])


@router.post(
    "/campaigns/{campaign_id}/appeals",
    status_code=202,
    response_model=AppealAccepted,
    responses=errors(404, 410, 413, 422, 429),
    # The body is read by hand (size limit first, then 410 before 422), so describe it here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AppealIn.model_json_schema()}},
        }
    },
)
async def post_appeal(campaign: CampaignDep, request: Request, context: ContextDep) -> Response:
    """One step: the supporter's appeal to every chosen target over every chosen channel.

    Checked in this order: 404 unknown campaign, 413 body too large, 410 closed campaign,
    422 a body that is not an appeal, 429 rate limit, 422 a field the rules refuse (the
    first of them; every one is checked). Every accepted submission gets the same 202:
    whether the address had taken part already is told only to the address, by email
    (with the link to follow the appeal).
    """
    body = await read_limited_body(request, context.settings.intake.max_body_bytes)
    if not campaign.is_open():
        raise closed_error(campaign)
    try:
        payload = AppealIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        field, message = describe_validation(list(exc.errors()))
        raise ApiError(422, message, field) from None
    result = await context.submit_appeal(
        AppealRequest(
            campaign_id=campaign.id,
            supporter_name=payload.supporter.name,
            supporter_email=payload.supporter.email,
            supporter_country=payload.supporter.country,
            targets=payload.targets or (),
            channels=payload.channels or (),
            message=payload.message,
            tweet=payload.tweet,
            language=payload.language,
            idempotency_key=payload.idempotency_key,
            receipt=payload.receipt,
            contact_ok=payload.contact_ok,
            reply_to=payload.reply_to,
            page_language=payload.page_language,
            sources=_sources(payload),
            via=Via.API,
            client=client_ip(request),
        )
    )
    if isinstance(result, Rejected):
        raise _refused(result)
    # Serialised here, once (returned as a model, it would be validated and dumped again).
    accepted = AppealAccepted.of(result).model_dump_json().encode()
    return Response(accepted, status_code=202, media_type="application/json")


def _refused(rejected: Rejected) -> ApiError:
    """A refusal as the API answers it: its first problem (the field and why), 429 with
    Retry-After for a limit reached."""
    problem = rejected.first
    if rejected.retry_after is not None:
        headers = {"Retry-After": str(rejected.retry_after)}
        return ApiError(429, problem.message, problem.field, headers=headers)
    return ApiError(STATUS_OF[problem.kind], problem.message, problem.field)


def _sources(payload: AppealIn) -> dict[str, str | None]:
    utm = payload.utm
    return {
        "source": payload.source,
        "utm_source": utm.source if utm else None,
        "utm_medium": utm.medium if utm else None,
        "utm_campaign": utm.campaign if utm else None,
    }


@router.get("/appeals/{appeal_id}", response_model=AppealStatus, responses=errors(404))
async def get_appeal(appeal_id: str, token: str, context: ContextDep) -> AppealStatus:
    """A supporter's status page data: each delivery with a plain-language reason. Needs
    the token of the status link emailed to the supporter (404 without it, as for an
    unknown appeal)."""
    return await appeal_status(context.service, appeal_id, token)


@router.get("/campaigns", response_model=CampaignList)
async def list_campaigns(context: ContextDep) -> CampaignList:
    return CampaignList(campaigns=[CampaignOut.of(c) for c in context.service.catalog])


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, responses=errors(404))
async def get_campaign(campaign: CampaignDep) -> CampaignOut:
    return CampaignOut.of(campaign, with_letters=True)


@router.post(
    "/campaigns/{campaign_id}/tweet-length",
    response_model=TweetLengthOut,
    responses=errors(404, 422),
)
async def tweet_length(campaign: CampaignDep, payload: TweetIn) -> TweetLengthOut:
    """The live counter's source: the same weighting and composition the server enforces."""
    lengths = tweet_lengths(campaign, payload.text, payload.name, payload.targets)
    longest = max(lengths.values(), default=0)
    return TweetLengthOut(
        weighted_length=longest,
        limit=MAX_WEIGHTED_LENGTH,
        fits=longest <= MAX_WEIGHTED_LENGTH,
        targets=lengths,
    )


@router.get("/campaigns/{campaign_id}/report", response_model=CampaignReport, responses=errors(404))
async def get_report(campaign_id: str, context: ContextDep) -> CampaignReport:
    """The totals shared with officials (public)."""
    return await campaign_report(context.service, campaign_id)


@router.post(
    "/campaigns/{campaign_id}/reported-actions",
    status_code=201,
    response_model=ReportedActionOut,
    responses=errors(404, 410, 422, 429),
)
async def post_reported_action(
    campaign_id: str, payload: ReportedActionIn, request: Request, context: ContextDep
) -> ReportedActionOut:
    """A call or posted letter the supporter made themselves, counted as self-reported:
    once per supporter (email), official and kind (a repeat is answered the same and not
    counted again), under the same limits per address and per email as appeals."""
    await context.per_ip.check(client_ip(request), "address")
    await context.per_email.check(payload.supporter.email.strip().lower(), "email address")
    await report_action(
        context.service,
        ReportedActionRequest(
            campaign_id=campaign_id,
            target_id=payload.target,
            kind=payload.kind,
            supporter_email=payload.supporter.email,
            supporter_name=payload.supporter.name,
        ),
    )
    return ReportedActionOut(campaign=campaign_id, target=payload.target, kind=payload.kind)


@router.delete(
    "/appeals/{appeal_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 422),
)
async def delete_appeal_data(appeal_id: str, token: str, context: ContextDep) -> Response:
    """Delete the supporter's personal data from an appeal, with the token of the signed
    link in their receipt. 404 for a wrong token (as for an unknown appeal); 409 while a
    delivery is still on its way. The counts stay."""
    await forget_appeal(context.service, appeal_id, token)
    return Response(status_code=204)
