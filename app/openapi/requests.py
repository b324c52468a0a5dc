"""Pydantic models of the request bodies (launch, delivery reports) for the OpenAPI document.

Requests reuse the launch models of app/launch_fields.py and add the parts that
app/launch_request.py checks by hand (destinations, the flat form's `to`); the
report body follows INFOBIP.md §4. Documentation only: validation happens in
app/launch_request.py and app/notify.py.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.alias_generators import to_camel

from app.infobip.limits import MAX_DESTINATIONS_PER_MESSAGE
from app.launch.fields import FlatLaunch, Id, LaunchEnvelope, MessageFields

PhoneNumber = Annotated[
    str | int,
    Field(
        description=(
            "An international number, country code first; spaces, dashes, dots, parentheses "
            "and one leading + or 00 are removed. A JSON integer is taken as its digits."
        )
    ),
]
Destinations = Annotated[
    list[PhoneNumber], Field(min_length=1, max_length=MAX_DESTINATIONS_PER_MESSAGE)
]


class Destination(BaseModel):
    """One number to call and the client's messageId (a UUID is made when absent)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    to: PhoneNumber
    message_id: Id | None = None


class LaunchMessage(MessageFields):
    """One message object: Infobip's message fields (unknown ones passed on) and destinations."""

    destinations: Annotated[
        list[Destination], Field(min_length=1, max_length=MAX_DESTINATIONS_PER_MESSAGE)
    ]


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
