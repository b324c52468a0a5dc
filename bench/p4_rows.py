"""P4 rows as COPY text: the campaigns of bench/p4_data.py, call by call, event by event.

Events come out in the order they were received (a heap keyed by received time), so
a call's history is spread over call_events as in production, not stored together.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import itertools
import json
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from p4_data import (
    ACCEPTED,
    BATCH_SIZE,
    COLLECTED,
    DIAL_SECONDS,
    ENROUTE,
    FINALS,
    HOT_EVERY,
    HOT_NUMBER,
    NO_ERROR,
    NULL,
    OPERATOR,
    PER_MESSAGE,
    PRICE,
    SCENARIO,
    WAITING,
    Campaign,
    Error,
    Final,
    Status,
)


def _copy_text(value: str) -> str:
    """Escape text for COPY's text format (JSON may hold backslashes)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _cells(values: list[Any]) -> str:
    """Join values as one COPY text line (without the newline)."""
    return "\t".join(
        NULL if v is None else "t" if v is True else "f" if v is False else str(v) for v in values
    )


@functools.cache
def _status_cells(status: Status | None) -> str:
    return _cells(list(status) if status else [None] * 5)


@functools.cache
def _error_cells(error: Error | None) -> str:
    return _cells(list(error) if error else [None] * 6)


@functools.cache
def _status_json(status: Status) -> str:
    keys = ("groupId", "groupName", "id", "name", "description")
    return json.dumps(dict(zip(keys, status, strict=True)), separators=(",", ":"))


@functools.cache
def _error_json(error: Error | None) -> str:
    if error is None:
        return "null"
    keys = ("groupId", "groupName", "id", "name", "description", "permanent")
    return json.dumps(dict(zip(keys, error, strict=True)), separators=(",", ":"))


def _json_text(value: str | None) -> str:
    """Quote text known to need no escaping (digits, names, timestamps) as JSON."""
    return "null" if value is None else f'"{value}"'


class _Clock:
    """Format seconds after an epoch as PostgreSQL timestamptz text and as Infobip's text."""

    def __init__(self, epoch: datetime) -> None:
        self.epoch_ms = round(epoch.timestamp() * 1000)
        self.seconds: dict[int, tuple[str, str]] = {}

    def at(self, seconds: float) -> tuple[str, str]:
        """Return (`2026-11-20 08:00:00.000+00`, `2026-11-20T08:00:00.000+0000`)."""
        second, milli = divmod(self.epoch_ms + round(seconds * 1000), 1000)
        known = self.seconds.get(second)
        if known is None:
            moment = (EPOCH + timedelta(seconds=second)).isoformat()
            known = self.seconds[second] = (f"{moment[:10]} {moment[11:19]}.", moment[:19] + ".")
        return f"{known[0]}{milli:03d}+00", f"{known[1]}{milli:03d}+0000"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dedupe_key(message_id: str, status: Status, error: Error | None, occurred: str) -> str:
    """Hash the parts app/calls.py dedupe_key hashes (messageId, status, error, time)."""
    parts = [
        message_id,
        str(status[0]),
        str(status[2]),
        status[3],
        str(error[2]) if error else "",
        occurred,
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _collected_text(collected: dict[str, Any] | None) -> str:
    return _copy_text(json.dumps(collected)) if collected else NULL


@functools.cache
def _ivr_json(menu: str | None) -> str:
    """Return voiceCall.ivr as Infobip sends it: collected values are JSON inside strings."""
    collected = (COLLECTED_BY_MENU.get(menu) if menu is not None else None) or {}
    encoded = {key: json.dumps(value) for key, value in collected.items() if value}
    ivr = {"scenarioId": SCENARIO, "scenarioName": "P4 reminder", **encoded}
    return _copy_text(json.dumps(ivr, separators=(",", ":")))


COLLECTED_BY_MENU = {dtmfs["menu"]: c for c in COLLECTED if c and (dtmfs := c["collectedDtmfs"])}


class _Event(NamedTuple):
    received: float
    kind: str
    status: Status
    error: Error | None
    outcome: str
    applied: bool
    reason: str | None
    occurred: float


@dataclass
class _Call:
    id: int
    campaign: Campaign
    message_id: str
    to: str
    callback_data: str
    message_index: int
    batch_id: int
    batch_time: float
    sent: float
    final: Final
    duration: int
    collected: dict[str, Any] | None
    sent_at: tuple[str, str] = ("", "")
    answered_at: tuple[str, str] | None = None
    ended_at: tuple[str, str] = ("", "")

    @property
    def dtmf(self) -> str | None:
        """Return the DTMF codes of an answered call ("" when nothing was pressed)."""
        if self.collected:
            return str(self.collected["collectedDtmfs"]["menu"])
        return "" if self.final.answered_by else None


class Generator:
    """Make the rows of the campaigns given, deterministically from a seed."""

    def __init__(self, campaigns: list[Campaign], events_per_call: int, seed: int) -> None:
        """Plan the campaigns; the clock starts at the first campaign's start."""
        self.campaigns = campaigns
        self.events_per_call = events_per_call
        self.rng = random.Random(seed)
        self.clock = _Clock(campaigns[0].started)
        self.numbers = max(1, sum(c.calls for c in campaigns) // 3)
        self.weights = list(itertools.accumulate(final.weight for final in FINALS))
        self.event_id = 0

    def _offset(self, campaign: Campaign) -> float:
        return (campaign.started - self.campaigns[0].started).total_seconds()

    def batches(self) -> Iterator[str]:
        """Yield the batches rows (all sent, HTTP 200) as COPY text lines."""
        for campaign in self.campaigns:
            created = self.clock.at(self._offset(campaign))[0]
            for seq in range(math.ceil(campaign.calls / BATCH_SIZE)):
                size = min(BATCH_SIZE, campaign.calls - seq * BATCH_SIZE)
                start = self._offset(campaign) + seq * BATCH_SIZE * DIAL_SECONDS
                yield (
                    _cells(
                        [
                            campaign.first_batch_id + seq,
                            campaign.id,
                            seq,
                            "done",
                            size,
                            created,
                            created,
                            self.clock.at(start - 0.5)[0],
                            "dispatch:p4:1",
                            self.clock.at(start)[0],
                            False,
                            200,
                            None,
                        ]
                    )
                    + "\n"
                )

    def rows(self) -> Iterator[tuple[str | None, str | None]]:
        """Yield (call line, None) and (None, event line) pairs, events in received order."""
        pending: list[tuple[float, int, str]] = []
        seq = 0
        for campaign in self.campaigns:
            for k in range(campaign.calls):
                call = self._plan(campaign, k)
                while pending and pending[0][0] < call.batch_time:
                    yield None, self._numbered(heapq.heappop(pending)[2])
                line, events = self._call(call)
                yield line, None
                for received, event in events:
                    seq += 1
                    heapq.heappush(pending, (received, seq, event))
        while pending:
            yield None, self._numbered(heapq.heappop(pending)[2])

    def _numbered(self, event: str) -> str:
        self.event_id += 1
        return f"{self.event_id}\t{event}\n"

    def _plan(self, campaign: Campaign, k: int) -> _Call:
        rng = self.rng
        seq = k // BATCH_SIZE
        batch_time = self._offset(campaign) + seq * BATCH_SIZE * DIAL_SECONDS
        final = FINALS[bisect.bisect(self.weights, rng.random() * self.weights[-1])]
        number = (
            HOT_NUMBER if k % HOT_EVERY == 0 else str(385910000000 + rng.randrange(self.numbers))
        )
        answered = final.answered_by is not None
        return _Call(
            id=campaign.first_call_id + k, campaign=campaign,
            message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), to=number,
            callback_data=campaign.callback_data(k // PER_MESSAGE),
            message_index=k // PER_MESSAGE, batch_id=campaign.first_batch_id + seq,
            batch_time=batch_time, sent=batch_time + (k % BATCH_SIZE) * DIAL_SECONDS,
            final=final, duration=rng.randint(5, 180) if answered else 0,
            collected=rng.choice(COLLECTED) if final.outcome == "answered_human" else None,
        )  # fmt: skip

    def _call(self, call: _Call) -> tuple[str, list[tuple[float, str]]]:
        """Return a call's row and its events' rows (without ids) with their received times."""
        final, at = call.final, self.clock.at
        ring = call.sent + 4 + final.ring_seconds
        answered = ring if final.answered_by else None
        end = (answered + call.duration) if answered is not None else ring
        call.sent_at, call.ended_at = at(call.sent), at(end)
        call.answered_at = at(answered) if answered is not None else None
        events = [
            _Event(
                call.batch_time, "submit", ACCEPTED, None, "pending", True, None, call.batch_time
            )
        ]
        if final.status is not None:
            events.append(
                _Event(end + 2, "final", final.status, final.error, final.outcome, True, None, end)
            )
        events.append(
            _Event(
                call.sent + 1.5,
                "enroute",
                ENROUTE,
                NO_ERROR,
                "pending",
                True,
                None,
                call.sent + 0.5,
            )
        )
        events.append(
            _Event(
                call.sent + 4, "operator", OPERATOR, NO_ERROR, "pending", True, None, call.sent + 3
            )
        )
        # Reports of an earlier moment that arrived last: kept in the history, not applied.
        late = "after_final" if final.status is not None else "late"
        for j in range(len(events), self.events_per_call):
            events.append(
                _Event(
                    end + 30 + 60 * j,
                    "late",
                    WAITING,
                    NO_ERROR,
                    "pending",
                    False,
                    late,
                    call.sent + 1 + j / 1000,
                )
            )
        rows = [(e.received, self._event(call, e)) for e in events[: self.events_per_call]]
        is_final = final.status is not None
        if is_final:
            detail = (
                f"{call.duration}\t{math.ceil(call.duration / 60) * 60}\t{PRICE}\tEUR\t"
                f"{final.answered_by or NULL}\t{_opt(call.dtmf)}\t"
                f"{_collected_text(call.collected)}"
            )
        else:
            detail = "\t".join([NULL] * 7)
        updated = at(end + 2 if is_final else call.sent + 4)[0]
        line = (
            f"{call.id}\t{call.campaign.id}\t{call.batch_id}\t{call.message_index}\t"
            f"{call.message_id}\t{call.to}\t{call.callback_data}\taccepted\t{NULL}\t"
            f"{final.outcome}\t{_status_cells(final.status or OPERATOR)}\t"
            f"{'t' if is_final else 'f'}\t"
            f"{call.ended_at[0] if is_final else at(call.sent + 3)[0]}\t"
            f"{_error_cells(final.error if is_final else NO_ERROR)}\t{detail}\t"
            f"{call.sent_at[0]}\t{call.answered_at[0] if call.answered_at else NULL}\t"
            f"{call.ended_at[0] if is_final else NULL}\t"
            f"{at(self._offset(call.campaign))[0]}\t{updated}\n"
        )
        return line, rows

    def _event(self, call: _Call, event: _Event) -> str:
        """Return one event row without its id (COPY text, no newline)."""
        occurred_db, occurred_text = self.clock.at(event.occurred)
        received_db = self.clock.at(event.received)[0]
        head = f"{call.id}\t{call.message_id}\t{NULL}"
        status = _status_cells(event.status)
        if event.kind == "submit":
            raw = (
                f'{{"to":"{call.to}","status":{_status_json(event.status)},'
                f'"messageId":"{call.message_id}"}}'
            )
            return (
                f"{head}\tsubmit\taccepted\t{status}\t{_error_cells(None)}\t{event.outcome}\t"
                f"{occurred_db}\t{NULL}\t{received_db}\t{_NULLS_7}\t{call.callback_data}\t"
                f"{NULL}\t{NULL}\t{NULL}\t{raw}\tt\t{NULL}\t{NULL}\t0"
            )
        final = event.kind == "final"
        duration = call.duration if final else 0
        charged = math.ceil(duration / 60) * 60
        answered = call.answered_at if final else None
        menu = call.dtmf if final else None
        raw = (
            f'{{"bulkId":"{call.campaign.bulk_id}","messageId":"{call.message_id}",'
            f'"from":"38514800000","to":"{call.to}","sentAt":"{call.sent_at[1]}",'
            f'"mccMnc":"21901","callbackData":"{call.callback_data}","voiceCall":{{'
            f'"feature":"IVR","startTime":"{call.sent_at[1]}",'
            f'"answerTime":{_json_text(answered[1] if answered else None)},'
            f'"endTime":{_json_text(occurred_text if final else None)},'
            f'"duration":{duration},"chargedDuration":{charged},"fileDuration":null,'
            f'"dtmfCodes":{_json_text(menu)},'
            f'"answeredBy":{_json_text(call.final.answered_by if final else None)},'
            f'"ivr":{_ivr_json(menu)}}},'
            f'"price":{{"pricePerSecond":{"0.0012" if final else "0.0"},"currency":"EUR"}},'
            f'"status":{_status_json(event.status)},"error":{_error_json(event.error)}}}'
        )  # fmt: skip
        if final:
            detail = (
                f"{duration}\t{charged}\t{PRICE}\tEUR\t{call.final.answered_by or NULL}\t"
                f"{_opt(call.dtmf)}\t{_collected_text(call.collected)}"
            )
            times = f"{call.sent_at[0]}\t{answered[0] if answered else NULL}\t{call.ended_at[0]}"
        else:
            detail, times = _NULLS_7, f"{call.sent_at[0]}\t{NULL}\t{NULL}"
        duplicates = 1 if final and call.id % 20 == 0 else 0  # Infobip posted it twice
        key = _dedupe_key(call.message_id, event.status, event.error, occurred_text)
        return (
            f"{head}\treport\t{NULL}\t{status}\t{_error_cells(event.error)}\t{event.outcome}\t"
            f"{occurred_db}\t{occurred_text}\t{received_db}\t{detail}\t{call.callback_data}\t"
            f"{times}\t{raw}\t{'t' if event.applied else 'f'}\t{event.reason or NULL}\t{key}\t"
            f"{duplicates}"
        )


_NULLS_7 = "\t".join([NULL] * 7)


def _opt(value: str | None) -> str:
    return NULL if value is None else value
