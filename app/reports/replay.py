"""Stored bodies recorded (again): a replay of a kept body, and every pulled body."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import EventSource, InboundReport
from app.reports.events import report_candidate
from app.reports.inbound import PULL_PEER
from app.reports.items import DeliveryReport, InvalidItem
from app.reports.parse import parse_report_body
from app.reports.record import invalid_results, record, summarise


def replay_inbound(session: Session, inbound: InboundReport) -> dict[str, Any]:
    """Parse a stored body again and record its results (duplicates are recognised)."""
    items = parse_report_body(inbound.body, inbound.content_type)
    inbound.items = len(items)
    inbound.parse_error = None
    source = EventSource.PULL if inbound.peer == PULL_PEER else EventSource.REPORT
    received_at = utcnow()
    reports = [item for item in items if isinstance(item, DeliveryReport)]
    candidates = [
        report_candidate(r, received_at=received_at, inbound_report_id=inbound.id, source=source)
        for r in reports
    ]
    refused = invalid_results([item for item in items if isinstance(item, InvalidItem)])
    results = record(session, candidates)
    return summarise(sorted(refused + results, key=lambda result: result.index))
