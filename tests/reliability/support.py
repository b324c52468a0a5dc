"""Shared pieces of the reliability suite: environments, reports with known outcomes, delivery.

Reports are generated from `Spec`s, so the test knows each one's occurred_at, status,
error and outcome without parsing what it sent; `sorted_winners` replays them in time
order with the precedence rules (app.infobip.codes) to give the status every call must end at.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.tokens import create_token
from app.db import utcnow
from app.infobip.codes import Error, Outcome, Status, derive_outcome, is_final, supersedes
from app.models import Call, CallEvent, EventSource
from app.simulator.server import Faults, Simulator
from tests.conftest import NOTIFY_TOKEN, SIM_KEY
from tests.reports.test_replay import as_xml

JSON_TYPE = "application/json"
XML_TYPE = "application/xml; charset=UTF-8"
SCENARIO = "6298AA7707903A4ED680B436929681AD"
# IVR_MAX_REPORT_BYTES of the shared stack: the oversize cases stay cheap, the replay fits.
MAX_REPORT_BYTES = 1024 * 1024

NOT_DELIVERED = "UNDELIVERABLE_NOT_DELIVERED"
# (status group, group name, status id, status name, error or None, answeredBy):
# one of each outcome of INFOBIP.md §5, and non-final statuses that later ones replace.
KINDS: dict[str, tuple[int, str, int, str, tuple[int, int, str] | None, str | None]] = {
    "waiting": (1, "PENDING", 3, "PENDING_WAITING_DELIVERY", None, None),
    "enroute": (1, "PENDING", 7, "PENDING_ENROUTE", None, None),
    "operator": (3, "DELIVERED", 2, "DELIVERED_TO_OPERATOR", None, None),
    "human": (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", (0, 10000, "NORMAL_HANGUP"), "HUMAN"),
    "machine": (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", (0, 10002, "MACHINE"), "MACHINE"),
    "odd": (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", (2, 10500, "SOMETHING_ELSE"), None),
    "busy": (2, "UNDELIVERABLE", 97, "BUSY", (1, 10201, "BUSY"), None),
    "no_answer": (2, "UNDELIVERABLE", 96, "NO_ANSWER", (1, 10200, "NO_ANSWER"), None),
    "declined": (2, "UNDELIVERABLE", 4, NOT_DELIVERED, (1, 10202, "DECLINED"), None),
    "failed": (2, "UNDELIVERABLE", 4, NOT_DELIVERED, (1, 10400, "NETWORK"), None),
    "expired": (4, "EXPIRED", 15, "EXPIRED_EXPIRED", None, None),
    "rejected": (5, "REJECTED", 6, "REJECTED_NETWORK", None, None),
}


@dataclass
class Stack:
    """ivrdesk under gunicorn, its database and the fake Infobip it talks to."""

    url: str
    database_url: str
    engine: Engine
    sessions: sessionmaker[Session]
    simulator: Simulator
    simulator_url: str
    log: Path
    token: str = ""

    def launch(self, body: Any, **kwargs: Any) -> httpx.Response:
        """POST a launch body as an operator."""
        return httpx.post(
            f"{self.url}/api/v1/campaigns", json=body, timeout=60,
            headers={"Authorization": f"Bearer {self.token}"}, **kwargs,
        )  # fmt: skip

    def notify(
        self, body: bytes, content_type: str | None, token: str = NOTIFY_TOKEN
    ) -> httpx.Response:
        """POST a report body to the notify URL."""
        headers = {} if content_type is None else {"Content-Type": content_type}
        return httpx.post(
            f"{self.url}/notify/ivr/{token}", content=body, headers=headers, timeout=60
        )

    def get(self, path: str) -> httpx.Response:
        """GET an API path as an operator."""
        return httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


def app_env(database_url: str, infobip_url: str, **extra: str) -> dict[str, str]:
    """Return the IVR_* variables for ivrdesk against a database and the fake Infobip."""
    return {
        "IVR_DATABASE_URL": database_url,
        "IVR_INFOBIP_BASE_URL": infobip_url,
        "IVR_INFOBIP_API_KEY": SIM_KEY,
        "IVR_PUBLIC_URL": "http://127.0.0.1:9",
        "IVR_NOTIFY_TOKENS": NOTIFY_TOKEN,
        **extra,
    }


def new_operator_token(sessions: sessionmaker[Session]) -> str:
    """Store an operator API token and return its secret."""
    with sessions() as session:
        _, secret = create_token(session, "reliability", "operator", now=utcnow())
        session.commit()
    return secret


def fresh(stack: Stack) -> Stack:
    """Reset the fake Infobip and give the stack a new operator token."""
    httpx.post(f"{stack.simulator_url}/_simulator/reset", timeout=10).raise_for_status()
    stack.simulator.faults = Faults()
    stack.simulator.reject_prefixes = ()
    stack.simulator.on_launch = None
    stack.token = new_operator_token(stack.sessions)
    return stack


def flat_launch(bulk_id: str, numbers: Iterable[str]) -> dict[str, Any]:
    """Return a flat-form launch body (DESIGN.md "Launching a campaign")."""
    return {"bulkId": bulk_id, "scenarioId": SCENARIO, "from": "41793026700", "to": list(numbers)}


@dataclass(frozen=True)
class Spec:
    """One report as generated: what it says and how it is written (v1 or v2)."""

    message_id: str
    kind: str
    occurred_at: datetime
    duration: int
    version: int

    @property
    def final(self) -> bool:
        """Say whether the report's status is final."""
        group, _, status_id, name, _, _ = KINDS[self.kind]
        return is_final(Status(group, status_id, name))

    @property
    def outcome(self) -> Outcome:
        """Return the outcome app.infobip.codes derives from this report."""
        group, _, status_id, name, error, answered_by = KINDS[self.kind]
        err = None if error is None else Error(error[0], error[1], error[2])
        return derive_outcome(Status(group, status_id, name), err, answered_by)

    @property
    def status_name(self) -> str:
        """Return the status name the report carries."""
        return KINDS[self.kind][3]

    @property
    def group_id(self) -> int:
        """Return the status group the report carries."""
        return KINDS[self.kind][0]

    def render(self) -> dict[str, Any]:
        """Return the report as Infobip sends it, version 1 (flat) or 2 (voiceCall)."""
        group, group_name, status_id, name, error, answered_by = KINDS[self.kind]
        result: dict[str, Any] = {
            "bulkId": "reliability",
            "messageId": self.message_id,
            "to": "41793026700",
            "sentAt": _infobip_time(self.occurred_at - timedelta(seconds=self.duration + 5)),
            "status": {"groupId": group, "groupName": group_name, "id": status_id, "name": name},
        }
        if error is not None:
            result["error"] = {"groupId": error[0], "id": error[1], "name": error[2]}
        if self.version == 1:
            millis = int(self.occurred_at.timestamp() * 1000)
            result.update(endTime=millis, doneAt=_infobip_time(self.occurred_at),
                          duration=self.duration, answeredBy=answered_by)  # fmt: skip
        else:
            result["voiceCall"] = {
                "endTime": _infobip_time(self.occurred_at),
                "duration": self.duration,
                "answeredBy": answered_by,
            }
        return result


def _infobip_time(moment: datetime) -> str:
    """Write a moment as Infobip does: milliseconds and a +0000 offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def make_specs(message_ids: list[str], total: int, rng: random.Random) -> list[Spec]:
    """Return `total` distinct reports over the calls (at least one each, distinct times)."""
    assert total >= len(message_ids)
    per_call = [1] * len(message_ids)
    for _ in range(total - len(message_ids)):
        per_call[rng.randrange(len(message_ids))] += 1
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)  # after every submit
    specs = []
    for number, (message_id, count) in enumerate(zip(message_ids, per_call, strict=True)):
        for millis in rng.sample(range(1, 3_600_000), count):  # distinct times: no ties
            specs.append(
                Spec(
                    message_id=message_id,
                    kind=rng.choice(list(KINDS)),
                    occurred_at=base + timedelta(hours=number, milliseconds=millis),
                    duration=rng.randint(0, 300),
                    version=1 if rng.random() < 0.25 else 2,
                )
            )
    return specs


def sorted_winners(
    specs: Iterable[Spec], submitted: Mapping[str, datetime | None]
) -> dict[str, Spec]:
    """Replay reports in time order with the precedence rules; return each call's winner."""
    current: dict[str, tuple[bool, datetime | None, Spec | None]] = {
        message_id: (False, moment, None) for message_id, moment in submitted.items()
    }
    for spec in sorted(specs, key=lambda s: s.occurred_at):
        final, moment, _ = current[spec.message_id]
        if supersedes(spec.final, spec.occurred_at, final, moment) is None:
            current[spec.message_id] = (spec.final, spec.occurred_at, spec)
    return {message_id: spec for message_id, (_, _, spec) in current.items() if spec is not None}


def encode(specs: list[Spec], xml: bool) -> tuple[bytes, str]:
    """Return one POST body carrying the reports, and its content type."""
    results = [spec.render() for spec in specs]
    if xml:
        return as_xml(results), XML_TYPE
    return json.dumps({"results": results}).encode(), JSON_TYPE


def chunk_posts(
    deliveries: list[Spec], rng: random.Random, sizes: tuple[int, ...], xml_share: float
) -> list[tuple[list[Spec], bytes, str]]:
    """Cut deliveries into POSTs of the given sizes, some as XML."""
    posts = []
    rest = list(deliveries)
    while rest:
        size = rng.choice(sizes)
        chunk, rest = rest[:size], rest[size:]
        posts.append((chunk, *encode(chunk, rng.random() < xml_share)))
    return posts


@dataclass
class Answer:
    """What ivrdesk answered to one notify POST."""

    specs: list[Spec]
    status: int
    body: dict[str, Any]
    retry_after: str | None


def deliver(
    url: str,
    posts: list[tuple[list[Spec], bytes, str]],
    *,
    threads: int,
    deadline: float,
    retry_503: bool = False,
    on_answer: Callable[[int], None] | None = None,
) -> list[Answer]:
    """POST every body from several client threads; with retry_503, redeliver as Infobip would.

    on_answer is called with the number of answers so far, after each one.
    """
    answers: list[Answer] = []
    lock = threading.Lock()
    errors: list[str] = []

    def run(share: list[tuple[list[Spec], bytes, str]]) -> None:
        with httpx.Client(timeout=30) as client:
            for specs, body, content_type in share:
                while time.monotonic() < deadline:
                    try:
                        response = client.post(
                            f"{url}/notify/ivr/{NOTIFY_TOKEN}",
                            content=body,
                            headers={"Content-Type": content_type},
                        )
                    except httpx.TransportError as exc:
                        errors.append(repr(exc))
                        break
                    answer = Answer(specs, response.status_code, response.json(),
                                    response.headers.get("Retry-After"))  # fmt: skip
                    with lock:
                        answers.append(answer)
                        so_far = len(answers)
                    if on_answer is not None:
                        on_answer(so_far)
                    if not (retry_503 and response.status_code == 503):
                        break
                    time.sleep(0.05)

    workers = [threading.Thread(target=run, args=(posts[k::threads],)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0) + 30)
    assert errors == []
    assert not any(worker.is_alive() for worker in workers), "delivery did not finish in time"
    return answers


def report_events(session: Session) -> list[CallEvent]:
    """Return every report event (source report), oldest first."""
    query = select(CallEvent).where(CallEvent.source == EventSource.REPORT.value)
    return list(session.scalars(query.order_by(CallEvent.id)))


def event_identity(event: CallEvent) -> tuple[str, datetime | None, str | None]:
    """Return what identifies a generated report among stored events."""
    return event.message_id, event.occurred_at, event.status_name


def spec_identity(spec: Spec) -> tuple[str, datetime | None, str | None]:
    """Return what identifies a generated report, comparable with event_identity."""
    return spec.message_id, spec.occurred_at, spec.status_name


def calls_by_message_id(session: Session) -> dict[str, Call]:
    """Return every call by its messageId."""
    return {call.message_id: call for call in session.scalars(select(Call))}


def count_rows(session: Session, model: type) -> int:
    """Count the rows of a table."""
    return session.scalar(select(func.count()).select_from(model)) or 0
