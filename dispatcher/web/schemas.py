"""The JSON API's shapes: what it accepts, what it answers, and how it refuses.

Every JSON route names one of these (or a service model: the report, an appeal's status,
a delivery) as its ``response_model``, and lists its error answers with :func:`errors`,
so ``/openapi.json`` documents every shape a client can receive.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from dispatcher.campaigns import Campaign
from dispatcher.models import Channel
from dispatcher.service.intake import Accepted
from dispatcher.service.views import AttemptView, DeliveryView

# ---------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status, repeated")
    field: str | None = Field(description="the input the error is about, if any")
    message: str = Field(description="one sentence: the bad value and what is accepted")


class ErrorOut(BaseModel):
    """Every error answer of the API has this shape."""

    error: ErrorDetail


_ERROR_MEANING = {
    401: "operator token missing or wrong",
    403: "the form expired or came from another site",
    404: "no such campaign, appeal or delivery (or the feature is not configured)",
    409: "the delivery's status does not allow this action",
    410: "the campaign is closed",
    413: "the request body is too large",
    422: "a value is not accepted; `field` names it",
    429: "too many requests; `Retry-After` says when to try again",
    503: "unhealthy",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries for these error statuses, all with :class:`ErrorOut`."""
    return {code: {"model": ErrorOut, "description": _ERROR_MEANING[code]} for code in codes}


# ---------------------------------------------------------------- appeals in and out


class SupporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    email: str
    country: str | None = None


class UtmIn(BaseModel):
    """The UTM parameters of the link the supporter followed."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supporter: SupporterIn
    language: str | None = None
    message: str | None = None
    tweet: str | None = None
    targets: list[str] | None = None
    channels: list[str] | None = None
    idempotency_key: str | None = Field(default=None, max_length=128)
    receipt: bool = Field(
        default=True, description="email the supporter a receipt once every delivery settled"
    )
    contact_ok: bool = Field(
        default=False, description="the supporter agrees to hear from the organisation again"
    )
    reply_to: bool = Field(
        default=False,
        description="let the officials reply to the supporter's address (campaigns that ask); "
        "the address is emailed a link to confirm it first, and their emails wait for it",
    )
    source: str | None = Field(
        default=None,
        description="where the action came from, for the report's sources (up to 64 letters, "
        "digits and . _ ~ + -)",
    )
    utm: UtmIn | None = Field(default=None, description="the UTM parameters, same rule")
    page_language: str | None = Field(
        default=None,
        description="the language of the pages the supporter used (en, zh): their receipt is "
        "written in it (default: the letter's language)",
    )


class DeliveryAsked(BaseModel):
    target: str
    channel: Channel


class HandOffPost(BaseModel):
    target: str
    link: str = Field(description="our link to the prepared post on X (it records the opening)")


class AppealAccepted(BaseModel):
    """202, the same for every accepted submission: a new appeal, an appeal this address
    had sent already (counted once; its supporter is told by email), or one from an
    address whose owner asked us to send nothing in their name. Who signed is private:
    only the emails to the address say which it was, and carry the link to follow it."""

    appeal_id: str = Field(
        description="this submission's id (the same again for a request "
        "with the same idempotency_key)"
    )
    deliveries: list[DeliveryAsked] = Field(description="what was asked for")
    confirm_by_email: bool = Field(
        description="the officials may reply to the supporter only once they follow the "
        "link emailed to them; their emails wait until then"
    )
    hand_offs: list[HandOffPost] = Field(
        default=[],
        description="X posts handed to the supporter to send from their own account: "
        "give them these links (counted as unverified, never as actions)",
    )

    @classmethod
    def of(cls, accepted: Accepted) -> AppealAccepted:
        return cls(
            appeal_id=accepted.appeal_id,
            deliveries=[DeliveryAsked(target=t, channel=c) for t, c in accepted.requested],
            confirm_by_email=accepted.confirm_by_email,
            hand_offs=[HandOffPost(target=t, link=link) for t, link in accepted.hand_offs],
        )


class ReportedSupporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=1000)
    email: str = Field(max_length=1000)


class ReportedActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    kind: str = Field(description="call or letter")
    supporter: ReportedSupporterIn = Field(
        description="who reports it: counted once per supporter (email), official and kind"
    )


class ReportedActionOut(BaseModel):
    """201, the same whether this supporter had reported it already or not (each counts
    once): an email address alone says nothing about its owner."""

    campaign: str
    target: str
    kind: str


class TweetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, max_length=2000)
    name: str = Field(default="", max_length=200)
    targets: list[str] | None = Field(
        default=None, max_length=50, description="the X targets chosen (default: all)"
    )


class TweetLengthOut(BaseModel):
    weighted_length: int = Field(description="the longest post any X target would get")
    limit: int
    fits: bool
    targets: dict[str, int] = Field(description="target id → weighted length of its post")


# ---------------------------------------------------------------- campaigns


class TargetOut(BaseModel):
    id: str
    name: str
    title: str | None
    salutation: str
    channels: list[Channel]
    email: str | None
    fax: str | None
    twitter: list[str]
    phone: str | None
    postal: str | None


class LetterOut(BaseModel):
    subject: str = Field(description="the first subject line")
    subjects: list[str] = Field(description="every subject line; each appeal gets one")
    body: str
    call_script: str | None = None


class CampaignOut(BaseModel):
    """What anyone may see of a campaign: the case and the officials' public addresses."""

    id: str
    title: str
    organisation: str
    summary: str
    deadline: str
    open: bool
    languages: list[str]
    default_language: str
    tweet: str
    targets: list[TargetOut]
    letters: dict[str, LetterOut] | None = Field(
        default=None, description="language → sample letter (on a single campaign only)"
    )

    @classmethod
    def of(cls, campaign: Campaign, *, with_letters: bool = False) -> CampaignOut:
        letters = None
        if with_letters:
            letters = {
                lang: LetterOut(
                    subject=letter.subject_lines[0],
                    subjects=list(letter.subject_lines),
                    body=letter.body,
                    call_script=letter.call_script,
                )
                for lang, letter in campaign.letter.items()
            }
        return cls(
            id=campaign.id,
            title=campaign.title,
            organisation=campaign.organisation,
            summary=campaign.summary,
            deadline=campaign.deadline.isoformat(),
            open=campaign.is_open(),
            languages=sorted(campaign.letter),
            default_language=campaign.default_language,
            tweet=campaign.tweet,
            targets=[
                TargetOut(
                    id=t.id,
                    name=t.name,
                    title=t.title,
                    salutation=t.salutation,
                    channels=list(t.channels),
                    email=t.email,
                    fax=t.fax,
                    twitter=list(t.twitter),
                    phone=t.phone,
                    postal=t.postal,
                )
                for t in campaign.targets
            ],
            letters=letters,
        )


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


# ---------------------------------------------------------------- operators


class DeliveryOut(DeliveryView):
    attempts_detail: list[AttemptView] | None = Field(
        default=None, description="every attempt, with include=attempts"
    )


class DeliveryExport(BaseModel):
    """Every delivery a filter selects, oldest first (the JSON export)."""

    deliveries: list[DeliveryView]


class SupporterOut(BaseModel):
    campaign: str
    name: str
    email: str
    country: str | None
    appeals: int = Field(description="appeals this supporter made in this campaign")
    last_appeal_at: str = Field(
        description="when the latest was made, e.g. 2026-12-02 18:20:44 UTC"
    )
    contact_ok: bool = Field(description="agreed, on at least one appeal, to future contact")


class SupporterExport(BaseModel):
    """Supporters by campaign, most recent first (the JSON export)."""

    supporters: list[SupporterOut]


class HeldLetterOut(BaseModel):
    """A supporter-written letter waiting for an operator's review."""

    appeal_id: str
    campaign: str
    supporter_name: str
    supporter_country: str | None
    language: str
    subject: str
    body: str
    tweet: str | None
    created_at: str = Field(description="e.g. 2026-12-02 18:20:44 UTC")
    deliveries: list[str] = Field(description="target:channel of each held delivery")


class ReviewOut(BaseModel):
    letters: list[HeldLetterOut] = Field(description="the oldest first")


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500, description="why (rejections)")


class ReviewDecisionOut(BaseModel):
    appeal_id: str
    decision: str = Field(description="approved (queued) or rejected (cancelled)")
    deliveries: int = Field(description="how many deliveries it changed")


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class CallbackOut(BaseModel):
    received: bool
    changed: bool = Field(description="whether a delivery was settled by this callback")


class HealthOut(BaseModel):
    """The status for anyone; the details (which may quote a failure) only for operators."""

    status: str = Field(
        description="ok; degraded (the worker is about to start again); unhealthy (503)"
    )
    database: str | None = Field(default=None, description="operators only")
    worker: str | None = Field(
        default=None,
        description="operators only: the in-process worker's state, and why it stopped",
    )
    worker_restarts: int | None = Field(
        default=None, description="operators only: times the worker was started again"
    )


# ---------------------------------------------------------------- the schema document


def use_our_error_shape(app: FastAPI) -> None:
    """Make ``/openapi.json`` show :class:`ErrorOut` where FastAPI would show its own 422.

    FastAPI documents request-validation failures with its ``HTTPValidationError``; our
    handler answers them with the same shape as every other error, so say that.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_error_shape(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_error_shape(schema: dict[str, Any]) -> dict[str, Any]:
    ours = {"$ref": "#/components/schemas/ErrorOut"}
    for operation in (op for ops in schema["paths"].values() for op in ops.values()):
        answer = operation.get("responses", {}).get("422", {})
        schema_of = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if schema_of.get("$ref") == "#/components/schemas/HTTPValidationError":
            answer["description"] = _ERROR_MEANING[422]
            answer["content"] = {"application/json": {"schema": ours}}
    # ErrorOut is already a component: every router lists its errors with it.
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
