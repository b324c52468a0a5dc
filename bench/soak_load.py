"""The soak's load generator: the request recorder, the launch and the extra-report clients.

Each client is a thread with a keep-alive HTTP client (bench/soak_roles.py runs them, one
process per role; bench/soak_lookups.py has the lookup clients). The recorder keeps the
samples (kind, start second, latency, status, verdict) and the first problems in words.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.simulator.reports import INTERMEDIATE, NO_ERROR, XML_TYPE, encode_reports, format_time

OK, ERROR, UNEXPECTED = "ok", "error", "unexpected"
MAX_PROBLEMS = 40
SCENARIO = "SOAK0123456789ABCDEF0123456789AB"
# Campaign sizes and their weights: mostly small, now and then one above IVR_SYNC_LIMIT.
SIZES = (1, 5, 20, 50, 200, 500, 2500)
SIZE_WEIGHTS = (20, 25, 25, 19.2, 8, 2.5, 0.3)
ASYNC_SHARE = 0.3
REPOST_SHARE = 0.05
EARLY_SHARE = 0.2  # of the launches that give their own messageIds

Sample = tuple[str, float, float, int, str]


@dataclass(frozen=True)
class Target:
    """Where and as whom the load generator talks."""

    base_url: str
    simulator_url: str
    notify_path: str
    operator_token: str
    viewer_token: str
    admin_name: str
    admin_password: str
    t0: float
    seed: int


@dataclass
class Recorder:
    """Time and judge every HTTP request of one process; keep the first problems in words."""

    t0: float
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(
        self,
        client: httpx.Client,
        kind: str,
        method: str,
        url: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response | None:
        """Send one request; return the response (None on a connection error or timeout)."""
        started = time.monotonic()
        try:
            response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._add(kind, started, -1, ERROR, f"{kind} {method} {url}: {exc!r}")
            return None
        status = response.status_code
        verdict = OK if status in expect else ERROR if status >= 500 else UNEXPECTED
        text = " ".join(response.text.split())[:200] if verdict != OK else ""
        note = f"{kind} {method} {url}: {status} {text}" if verdict != OK else ""
        self._add(kind, started, status, verdict, note)
        return response

    def note(self, text: str) -> None:
        """Keep a problem found in an answer (not an HTTP failure)."""
        with self.lock:
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(text)

    def _add(self, kind: str, started: float, status: int, verdict: str, note: str) -> None:
        latency = time.monotonic() - started
        with self.lock:
            self.samples.append((kind, started - self.t0, latency, status, verdict))
            if note and len(self.problems) < MAX_PROBLEMS:
                self.problems.append(f"t={started - self.t0:.1f}s {note}")


def client_for(target: Target, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=target.base_url, headers=headers, timeout=60.0)


# Launching


def _launch_body(rng: random.Random, bulk_id: str, numbers: list[str]) -> dict[str, Any]:
    """Build a launch body: the messages form (one or two messages), or the flat form."""
    size = rng.choices(SIZES, SIZE_WEIGHTS)[0]
    tos = rng.sample(numbers, size)
    if rng.random() < 0.1:
        return {"bulkId": bulk_id, "name": f"soak {bulk_id}", "scenarioId": SCENARIO,
                "from": "41215550000", "to": tos, "callbackData": f"cb-{bulk_id}",
                "parameters": {"clinic": "Soak", "slot": "09:30"}}  # fmt: skip
    split = rng.randint(1, size - 1) if size > 1 and rng.random() < 0.4 else size
    client_ids = rng.random() < 0.3
    messages = []
    for number, part in enumerate((tos[:split], tos[split:])):
        if not part:
            continue
        message: dict[str, Any] = {
            "scenarioId": SCENARIO,
            "from": "41215550000",
            "destinations": [
                {"to": to, "messageId": f"{bulk_id}.{number}.{i}"} if client_ids else {"to": to}
                for i, to in enumerate(part)
            ],
            "parameters": {"clinic": "Soak", "slot": f"{9 + number}:30"},
            "callbackData": f"cb-{bulk_id}-{number}",
        }
        if rng.random() < 0.25:
            message["notifyContentType"] = XML_TYPE
        messages.append(message)
    return {"bulkId": bulk_id, "name": f"soak {bulk_id}", "messages": messages}


def _destinations(body: dict[str, Any]) -> list[str]:
    if "to" in body:
        return list(body["to"])
    return [d["to"] for message in body["messages"] for d in message["destinations"]]


def launcher(
    target: Target,
    rec: Recorder,
    stop: threading.Event,
    number: int,
    campaigns: list[dict[str, Any]],
) -> None:
    """Launch campaigns until stopped, some asynchronously, some posted twice."""
    rng = random.Random(target.seed * 1000 + number)
    numbers = sorted({f"4179{rng.randrange(10_000_000):07d}" for _ in range(4000)})
    with client_for(target, target.operator_token) as client:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            bulk_id = f"soak-{target.seed}-{number}-{sequence}"
            body = _launch_body(rng, bulk_id, numbers)
            prefer = rng.random() < ASYNC_SHARE
            tos = _destinations(body)
            asynchronous = prefer or len(tos) > 2000
            kind = "launch async" if asynchronous else "launch sync"
            headers = {"Prefer": "respond-async"} if prefer else {}
            expect = (202,) if asynchronous else (201,)
            early = _report_early(target, rec, client, rng, body)
            answer = rec.request(client, kind, "POST", "/api/v1/campaigns", expect,
                                 json=body, headers=headers)  # fmt: skip
            entry = {"bulkId": bulk_id, "tos": tos, "async": asynchronous, "messageIds": None,
                     "early": early}  # fmt: skip
            if answer is not None and answer.is_success:
                entry["messageIds"] = [m["messageId"] for m in answer.json()["messages"]]
                _check_answer(rec, bulk_id, body, answer.json(), asynchronous)
            if answer is not None and answer.status_code in expect and rng.random() < REPOST_SHARE:
                again = rec.request(client, "launch repost", "POST", "/api/v1/campaigns",
                                    (200,), json=body, headers=headers)  # fmt: skip
                if again is not None and again.status_code == 200:
                    ids = [m["messageId"] for m in again.json()["messages"]]
                    if ids != entry["messageIds"]:
                        rec.note(f"repost of {bulk_id} answered other messageIds")
            campaigns.append(entry)
            stop.wait(rng.uniform(0.5, 2.0))


def _report_early(
    target: Target, rec: Recorder, client: httpx.Client, rng: random.Random, body: dict[str, Any]
) -> list[tuple[str, bytes]]:
    """Now and then report a call before its launch (it is parked, then matched at launch)."""
    known = [d for m in body.get("messages", []) for d in m["destinations"] if "messageId" in d]
    if not known or rng.random() >= EARLY_SHARE:
        return []
    sent_at = format_time(datetime.now(UTC) - timedelta(seconds=5))
    results = [
        {"bulkId": body["bulkId"], "messageId": d["messageId"], "to": d["to"], "sentAt": sent_at,
         "status": INTERMEDIATE[0], "error": NO_ERROR}
        for d in rng.sample(known, min(len(known), rng.randint(1, 3)))
    ]  # fmt: skip
    content = json.dumps({"results": results}).encode()
    answer = rec.request(client, "report before launch", "POST", target.notify_path,
                         content=content, headers={"Content-Type": "application/json"})  # fmt: skip
    if answer is None or answer.status_code != 200:
        return []
    return [("application/json", content)]


def _check_answer(
    rec: Recorder, bulk_id: str, body: dict[str, Any], answer: dict[str, Any], asynchronous: bool
) -> None:
    """Note a launch answer that names other numbers or submit states than it should."""
    states = collections.Counter(m["submitState"] for m in answer["messages"])
    wanted = {"queued", "submitting", "accepted"} if asynchronous else {"accepted"}
    if sorted(m["to"] for m in answer["messages"]) != sorted(_destinations(body)):
        rec.note(f"launch {bulk_id}: the answer lists other numbers than were sent")
    if not set(states) <= wanted or (asynchronous and states["accepted"]):
        rec.note(f"launch {bulk_id} ({len(answer['messages'])} calls, "
                 f"{'asynchronous' if asynchronous else 'synchronous'}): submit states in the "
                 f"answer {dict(states)}")  # fmt: skip


# Extra reports


def _ledger_posts(simulator: httpx.Client, since: int) -> tuple[int, list[dict[str, Any]]]:
    answer = simulator.get("/_soak/sent", params={"since": since}).json()
    return int(answer["total"]), list(answer["items"])


def reporter(
    target: Target,
    rec: Recorder,
    stop: threading.Event,
    number: int,
    posted: list[tuple[str, bytes]],
) -> None:
    """Post copies of reports the fake Infobip sent: as they were, as XML, bundled, unknown."""
    rng = random.Random(target.seed * 1000 + 500 + number)
    seen = 0
    bodies: list[tuple[str, bytes]] = []
    results: list[dict[str, Any]] = []
    with client_for(target, None) as client, httpx.Client(base_url=target.simulator_url,
                                                       timeout=30.0) as simulator:  # fmt: skip
        while not stop.is_set():
            if rng.random() < 0.2 or not bodies:
                seen, fresh = _ledger_posts(simulator, seen)
                for post in fresh:
                    bodies.append((post["contentType"], post["body"].encode()))
                    if post["contentType"] != XML_TYPE:
                        results.extend(json.loads(post["body"])["results"])
                del bodies[:-500], results[:-2000]
            if bodies:
                content_type, body, kind = _extra_report(rng, bodies, results)
                headers = {"Content-Type": content_type}
                answer = rec.request(client, kind, "POST", target.notify_path, (200,),
                                     content=body, headers=headers)  # fmt: skip
                if answer is not None and answer.status_code == 200:
                    posted.append((content_type, body))
                    if answer.json().get("invalid"):
                        rec.note(f"{kind}: ivrdesk found invalid items: {answer.text[:300]}")
            stop.wait(rng.uniform(0.05, 0.35))


def _extra_report(
    rng: random.Random, bodies: list[tuple[str, bytes]], results: list[dict[str, Any]]
) -> tuple[str, bytes, str]:
    """Choose one extra report POST: (content type, body, kind)."""
    roll = rng.random()
    if roll < 0.4 or not results:
        content_type, body = rng.choice(bodies)
        return content_type, body, "report repeat"
    if roll < 0.65:
        chosen = rng.sample(results, min(len(results), rng.randint(1, 3)))
        kind = rng.choice((XML_TYPE, "text/xml; charset=utf-8"))
        return kind, encode_reports(chosen, XML_TYPE), "report as xml"
    if roll < 0.9:
        chosen = rng.sample(results, min(len(results), rng.randint(5, 30)))
        chosen.append(rng.choice(chosen))
        rng.shuffle(chosen)
        return "application/json", json.dumps({"results": chosen}).encode(), "report bundle"
    unknown = dict(rng.choice(results), messageId=f"soak-unknown-{uuid.uuid4()}")
    return "application/json", json.dumps({"results": [unknown]}).encode(), "report unknown id"
