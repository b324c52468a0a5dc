"""The soak's checks: what the fake Infobip and the load generator sent, against the database.

A report is identified as ivrdesk dedupes it (DESIGN.md "Receiving delivery reports", step
3): messageId, status group/id/name, error id and the text of the time it occurred at
(voiceCall.endTime in the fake Infobip's v2 reports). The bodies are read here with lxml
and json, not with ivrdesk's parser, so that a parser fault shows up as a lost report.
"""

from __future__ import annotations

import collections
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import create_engine, text

from app.simulator.reports import FINAL_CODES

Key = tuple[str, int | None, int | None, str | None, int | None, str | None]
# (status id, error id) of each final report the fake Infobip sends, and its outcome.
FINAL_OUTCOMES = {
    (status["id"], error["id"]): name for name, (status, error) in FINAL_CODES.items()
}
_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass
class Findings:
    """Every figure the soak prints about correctness; `failures` lists the ones that fail."""

    figures: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def count(self, name: str, value: int, *, bad: bool = False, example: str = "") -> None:
        """Record a figure; a bad non-zero one fails the soak."""
        self.figures[name] = value
        if bad and value:
            self.failures.append(f"{name}: {value}")
            if example:
                self.examples.append(f"{name}: {example}")


def _element(node: Any) -> Any:
    """Turn an XML element into the JSON value it encodes (objects nest; text stays text)."""
    children = list(node)
    if not children:
        return node.text
    return {child.tag: _element(child) for child in children}


def read_results(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """Return the results of one report body, JSON or XML."""
    if "xml" in content_type:
        root = etree.fromstring(body, _XML)
        return [_element(node) for node in root.iter("result")]
    results: list[dict[str, Any]] = json.loads(body)["results"]
    return results


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def report_key(result: dict[str, Any]) -> Key:
    """Return what identifies a report for ivrdesk's dedupe, read from the raw result."""
    status = result.get("status") or {}
    error = result.get("error") or {}
    voice = result.get("voiceCall") or {}
    moment = voice.get("endTime") or result.get("endTime") or result.get("doneAt")
    return (str(result["messageId"]), _int(status.get("groupId")), _int(status.get("id")),
            status.get("name"), _int(error.get("id")), moment or result.get("sentAt"))  # fmt: skip


@dataclass
class Sent:
    """What was posted to ivrdesk's notify URL and acknowledged."""

    keys: set[Key] = field(default_factory=set)
    items: int = 0
    bodies: collections.Counter[str] = field(default_factory=collections.Counter)
    finals: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, content_type: str, body: bytes, *, from_simulator: bool) -> None:
        """Take one body in: its reports, its digest and (from the simulator) each final."""
        self.bodies[hashlib.md5(body).hexdigest()] += 1  # noqa: S324  # a digest, not security
        for result in read_results(content_type, body):
            key = report_key(result)
            self.keys.add(key)
            self.items += 1
            if from_simulator and (key[2], key[4]) in FINAL_OUTCOMES:
                self.finals[key[0]] = (int(key[2] or 0), int(key[4] or 0))


def _rows(url: str, query: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)))
    finally:
        engine.dispose()


def check_reports(url: str, sent: Sent, findings: Findings, *, complete: bool) -> None:
    """Lost reports, events not sent by anyone, the dedupe count and the raw bodies.

    complete: every report POST was acknowledged. Otherwise the failed ones were filled
    in from Infobip's logs by `ivrdesk reconcile` (events of source reconcile, with the
    same keys), and the counts of acknowledged items cannot be exact.
    """
    events = _rows(url, "SELECT message_id, status_group_id, status_id, status_name, error_id, "
                        "occurred_at_text, duplicates, call_id FROM call_events "
                        "WHERE source IN ('report', 'pull', 'reconcile')")  # fmt: skip
    stored = collections.Counter(tuple(row[:6]) for row in events)
    lost = sent.keys - set(stored)
    strange = set(stored) - sent.keys
    findings.count("distinct reports sent", len(sent.keys))
    findings.count("report events stored", len(events))
    findings.count("lost reports", len(lost), bad=True, example=repr(sorted(lost)[:3]))
    findings.count("events no one sent", len(strange), bad=True, example=repr(sorted(strange)[:3]))
    repeated = sum(n - 1 for n in stored.values())
    findings.count("reports stored twice", repeated, bad=True)
    reconciled = _rows(url, "SELECT count(*) FROM call_events WHERE source = 'reconcile'")
    counted = len(events) + sum(row[6] for row in events)
    findings.count("report items posted (acknowledged)", sent.items)
    findings.count("report items counted (events + duplicates)", counted)
    findings.count("final statuses filled from Infobip's logs", int(reconciled[0][0]))
    if complete:
        findings.count("items neither stored nor counted as duplicates",
                       abs(sent.items + int(reconciled[0][0]) - counted), bad=True)  # fmt: skip
    query = "SELECT md5(body) FROM inbound_reports WHERE peer IS DISTINCT FROM 'pull'"
    bodies = collections.Counter(row[0] for row in _rows(url, query))
    missing = sum((sent.bodies - bodies).values())
    findings.count("raw bodies missing from inbound_reports", missing, bad=complete)
    findings.count("raw bodies stored but never acknowledged", sum((bodies - sent.bodies).values()))
    parked = _rows(url, "SELECT count(*) FROM call_events e JOIN calls c "
                        "ON c.message_id = e.message_id WHERE e.call_id IS NULL")  # fmt: skip
    findings.count("reports still parked although their call exists", int(parked[0][0]), bad=True)


def check_calls(
    url: str,
    campaigns: list[dict[str, Any]],
    sent: Sent,
    launches: dict[str, Any],
    accepted_by_simulator: int,
    findings: Findings,
) -> None:
    """Every launched destination once as a call, sent once, with the simulator's final status."""
    rows = _rows(url, "SELECT k.bulk_id, c.to_number, c.message_id, c.submit_state, c.status_id, "
                      "c.error_id, c.outcome, c.status_final FROM calls c "
                      "JOIN campaigns k ON k.id = c.campaign_id")  # fmt: skip
    by_campaign: dict[str, list[Any]] = collections.defaultdict(list)
    for row in rows:
        by_campaign[row[0]].append(row)
    wrong, unanswered = [], 0
    for campaign in campaigns:
        stored = by_campaign.pop(campaign["bulkId"], [])
        if campaign["messageIds"] is None:
            unanswered += 1
            if stored and sorted(r[1] for r in stored) != sorted(campaign["tos"]):
                wrong.append(campaign["bulkId"])
            continue
        if sorted(r[1] for r in stored) != sorted(campaign["tos"]) or sorted(
            r[2] for r in stored
        ) != sorted(campaign["messageIds"]):
            wrong.append(campaign["bulkId"])
    findings.count("campaigns launched", len(campaigns))
    findings.count("launches without a 2xx answer (calls checked by number only)", unanswered)
    findings.count("campaigns whose calls differ from the launch", len(wrong), bad=True,
                   example=", ".join(wrong[:5]))  # fmt: skip
    findings.count("campaigns stored that no one launched", len(by_campaign), bad=True,
                   example=", ".join(list(by_campaign)[:5]))  # fmt: skip
    findings.count("calls", len(rows))
    not_accepted = [r for r in rows if r[3] != "accepted"]
    findings.count("calls not accepted", len(not_accepted), bad=True,
                   example=repr(not_accepted[:3]))  # fmt: skip
    accepted = len(rows) - len(not_accepted)
    findings.count("messageIds sent to the fake Infobip more than once",
                   len(launches["repeated"]), bad=True,
                   example=repr(list(launches["repeated"].items())[:5]))  # fmt: skip
    findings.count("accepted calls the fake Infobip does not count as accepted",
                   abs(accepted - accepted_by_simulator), bad=True)  # fmt: skip
    mismatched, no_final = [], 0
    for row in rows:
        if row[3] != "accepted":
            continue
        final = sent.finals.get(row[2])
        if final is None:
            no_final += 1
        elif (row[4], row[5], row[6], row[7]) != (*final, FINAL_OUTCOMES[final], True):
            mismatched.append((row[2], row[4], row[5], row[6], row[7], final))
    findings.count("accepted calls without a final report sent", no_final, bad=True)
    findings.count("final statuses that differ from the fake Infobip's", len(mismatched),
                   bad=True, example=repr(mismatched[:3]))  # fmt: skip


def table_sizes(url: str) -> dict[str, int]:
    """Return the row counts of the main tables."""
    names = ("campaigns", "calls", "call_events", "inbound_reports")
    query = " UNION ALL ".join(f"SELECT '{n}', count(*) FROM {n}" for n in names)  # noqa: S608
    return {row[0]: int(row[1]) for row in _rows(url, query)}
