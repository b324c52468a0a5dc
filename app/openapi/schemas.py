"""Pydantic models of the API's bodies, the source of the OpenAPI document's schemas; pure.

Requests reuse the launch models of app/launch_fields.py and add the parts
that app/launch_request.py checks by hand (destinations, the flat form's
`to`). Responses describe what app/lookups.py, app/listings.py, the notify
endpoint and the error handlers serialize (DESIGN.md "Looking up",
"Launching a campaign" step 6, "Receiving delivery reports" step 6). They are
documentation and test oracles: the views build their JSON themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.infobip.codes import Outcome
from app.models import EventSource, SubmitState
from app.openapi.requests import LaunchRequestBody, ReportBody

# Responses


class _Out(BaseModel):
    """A response body: camelCase names, every key always present (null when unknown)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Problem(_Out):
    """One problem, located by the JSON path (or query parameter) it concerns."""

    path: str
    message: str


class ErrorObject(_Out):
    """What went wrong: a stable code, a sentence, and the problems by path."""

    code: str = Field(examples=["validation_error", "not_found", "unauthorized"])
    message: str
    details: list[Problem]


class Error(_Out):
    """The common error shape of every API failure."""

    error: ErrorObject


class Status(_Out):
    """Infobip's status of a call or a report (INFOBIP.md §5)."""

    group_id: int | None
    group_name: str | None
    id: int | None
    name: str | None
    description: str | None


class CallError(_Out):
    """Infobip's error of a call or a report (INFOBIP.md §5)."""

    group_id: int | None
    group_name: str | None
    id: int | None
    name: str | None
    description: str | None
    permanent: bool | None


class Price(_Out):
    """The price Infobip reported."""

    price_per_second: float | None
    currency: str | None


class Collected(_Out):
    """IVR input decoded from its JSON-in-string form (v1 reports: dtmfCodesAsJson)."""

    model_config = ConfigDict(extra="allow")

    collected_dtmfs: Any = None
    collected_mapped_dtmfs: Any = None
    spoken_input: Any = None
    matched_spoken_input: Any = None


class HistoryEvent(_Out):
    """One row of a call's history."""

    received_at: datetime
    occurred_at: datetime | None
    source: EventSource
    submit_state: SubmitState | None
    status: Status | None
    error: CallError | None
    outcome: Outcome
    applied: bool
    reason: str | None


class Call(_Out):
    """A call (one destination of a campaign) and its current status."""

    message_id: str
    bulk_id: str
    campaign_id: str
    to: str
    callback_data: str | None
    submit_state: SubmitState
    status: Status | None
    error: CallError | None
    outcome: Outcome
    duration: int | None
    charged_duration: int | None
    price: Price | None
    cost: float | None
    answered_by: str | None
    dtmf: str | None
    collected: Collected | None
    updated_at: datetime


class CallDetail(Call):
    """A call with its whole history, oldest first."""

    history: list[HistoryEvent]


class Campaign(_Out):
    """A campaign with its counts, durations and cost per currency."""

    campaign_id: str
    bulk_id: str
    name: str
    created_at: datetime
    scenario_id: str
    total_calls: int
    submit_states: dict[SubmitState, int]
    status_groups: dict[str, int]
    outcomes: dict[Outcome, int]
    total_duration: int
    total_charged_duration: int
    cost: dict[str, float]


class UnmatchedReport(_Out):
    """A parked report result: no call has its messageId yet."""

    message_id: str
    received_at: datetime
    status: Status | None
    error: CallError | None
    outcome: Outcome
    occurred_at: datetime | None
    callback_data: str | None
    inbound_report_id: int | None


Cursor = Annotated[
    str | None, Field(description="The `cursor` of the next page; null on the last.")
]


class CallList(_Out):
    """A page of calls (without history)."""

    items: list[Call]
    next: Cursor


class CampaignList(_Out):
    """A page of campaigns, newest first."""

    items: list[Campaign]
    next: Cursor


class UnmatchedList(_Out):
    """A page of parked report results, newest first."""

    items: list[UnmatchedReport]
    next: Cursor


class LaunchedCall(_Out):
    """One destination in a launch answer (Infobip's shape, plus submitState)."""

    to: str
    message_id: str
    status: Status | None
    submit_state: SubmitState


class Clamp(_Out):
    """A value lowered to Infobip's limit."""

    path: str
    from_: int = Field(alias="from")
    to: int


class LaunchLinks(_Out):
    """Where to follow the campaign and its calls."""

    campaign: str
    calls: str


class LaunchAnswer(_Out):
    """Infobip's launch answer, extended by ivrdesk."""

    bulk_id: str
    campaign_id: str
    name: str
    messages: list[LaunchedCall]
    clamped: list[Clamp]
    links: LaunchLinks


class LaunchFailure(LaunchAnswer):
    """A launch that no call got through: the stored campaign plus the error."""

    error: ErrorObject


class ReportItemResult(_Out):
    """What happened to one result of a report POST."""

    index: int
    message_id: str | None
    result: Literal["applied", "not_applied", "duplicate", "unmatched", "invalid"]
    reason: str | None


class NotifyAnswer(_Out):
    """The notify endpoint's answer: counts per result and one entry per item."""

    applied: int
    not_applied: int
    duplicates: int
    unmatched: int
    invalid: int
    items: list[ReportItemResult] = Field(
        description="one entry per result, the first 1,000 of a longer POST"
    )
    items_omitted: int = Field(description="how many results' entries a longer answer left out")


class Probe(_Out):
    """A liveness or reachability answer."""

    status: Literal["ok"]


class Ready(_Out):
    """The database is reachable and its schema at the migrations' head."""

    status: Literal["ready"]
    revision: str | None


class NotReady(_Out):
    """Why this process should not get traffic."""

    status: Literal["unavailable"]
    reason: str


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (this one)."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (LaunchRequestBody, ReportBody)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    CallDetail,
    CallList,
    Campaign,
    CampaignList,
    UnmatchedList,
    LaunchAnswer,
    LaunchFailure,
    NotifyAnswer,
    Probe,
    Ready,
    NotReady,
    OpenApiDocument,
)
