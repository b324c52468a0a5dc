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

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.alias_generators import to_camel

from app.launch_fields import FlatLaunch, Id, LaunchEnvelope, MessageFields
from app.launch_request import MAX_DESTINATIONS
from app.models import EventSource, SubmitState
from app.status import Outcome

# Requests

PhoneNumber = Annotated[
    str | int,
    Field(
        description=(
            "An international number, country code first; spaces, dashes, dots, parentheses "
            "and one leading + or 00 are removed. A JSON integer is taken as its digits."
        )
    ),
]
Destinations = Annotated[list[PhoneNumber], Field(min_length=1, max_length=MAX_DESTINATIONS)]


class Destination(BaseModel):
    """One number to call and the client's messageId (a UUID is made when absent)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    to: PhoneNumber
    message_id: Id | None = None


class LaunchMessage(MessageFields):
    """One message object: Infobip's message fields (unknown ones passed on) and destinations."""

    destinations: Annotated[list[Destination], Field(min_length=1, max_length=MAX_DESTINATIONS)]


class LaunchBody(LaunchEnvelope):
    """A launch in Infobip's messages form, plus ivrdesk's `name`."""

    messages: Annotated[list[LaunchMessage], Field(min_length=1)]


class FlatLaunchBody(FlatLaunch):
    """A launch in the flat form: one message's fields with `to` at the top level."""

    to: Destinations | PhoneNumber
    message_id: Id | None = Field(
        default=None, description="Only when `to` is one number.", alias="messageId"
    )


class LaunchRequestBody(RootModel[LaunchBody | FlatLaunchBody]):
    """The body of POST /api/v1/campaigns and POST /voice/ivr/1/messages: either form."""


Timestamp = Annotated[
    str | int,
    Field(description="yyyy-MM-ddTHH:mm:ss.SSS+0000 (any offset); v1 may send epoch milliseconds."),
]


class _Report(BaseModel):
    """Part of an Infobip delivery report (INFOBIP.md §4): camelCase, unknown fields kept."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel)


class ReportStatus(_Report):
    """A report's status (INFOBIP.md §5)."""

    group_id: int | None = None
    group_name: str | None = None
    id: int | None = None
    name: str | None = None
    description: str | None = None


class ReportError(ReportStatus):
    """A report's error; `permanent` means final, not failure (INFOBIP.md §5)."""

    permanent: bool | None = None


class ReportPrice(_Report):
    """What the call cost per second."""

    price_per_second: float | None = None
    currency: str | None = None


class ReportIvr(_Report):
    """The IVR scenario and its input, as JSON documents encoded in strings."""

    scenario_id: str | None = None
    scenario_name: str | None = None
    collected_dtmfs: str | None = None
    collected_mapped_dtmfs: str | None = None
    spoken_input: str | None = None
    matched_spoken_input: str | None = None


class ReportVoiceCall(_Report):
    """The call itself (version 2)."""

    feature: str | None = None
    start_time: Timestamp | None = None
    answer_time: Timestamp | None = None
    end_time: Timestamp | None = None
    duration: int | None = None
    charged_duration: int | None = None
    file_duration: float | None = None
    dtmf_codes: str | None = None
    answered_by: str | None = None
    ivr: ReportIvr | None = None


class ReportResult(_Report):
    """One delivery report; version 1 has its call fields at the top level instead."""

    message_id: str
    bulk_id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    sent_at: Timestamp | None = None
    mcc_mnc: str | None = None
    callback_data: str | None = None
    voice_call: ReportVoiceCall | None = None
    price: ReportPrice | None = None
    status: ReportStatus | None = None
    error: ReportError | None = None


class ReportBody(_Report):
    """What Infobip posts to the notify URL: one or more reports (also as XML, same names)."""

    results: list[ReportResult]


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
    items: list[ReportItemResult]


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
