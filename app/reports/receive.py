"""Record one notify POST: its raw body and every result in it, through the one path.

Flask-free, so that the view (app/web/notify.py) and the lane in front of Flask
(app/web/notify_lane.py) record a POST the same way. Never commits.
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.db import json_may_hold_unstorable
from app.reports.events import report_candidate
from app.reports.inbound import Inbound
from app.reports.items import DeliveryReport, InvalidItem, ParsedItem
from app.reports.parse import media_type, utf8_charset
from app.reports.record import ItemResult, invalid_results, record


def record_post(
    session: Session | Connection,
    items: list[ParsedItem],
    *,
    body: bytes,
    content_type: str,
    peer: str | None,
) -> list[ItemResult]:
    """Keep the body and record its results in the session's transaction.

    An autocommitted connection (the notify lane's) takes a body of one report only,
    as one statement (app.reports.record.record). A UTF-8 JSON body without the
    escapes that make a NUL or a surrogate spares the candidates a scan of every text.
    """
    inbound = Inbound(body, content_type, peer, items=len(items))
    candidates = [
        report_candidate(item, received_at=inbound.received_at)
        for item in items
        if isinstance(item, DeliveryReport)
    ]
    refused = invalid_results([item for item in items if isinstance(item, InvalidItem)])
    results = record(
        session, candidates, inbound=inbound, text_checked=_text_checked(body, content_type)
    )
    return sorted(refused + results, key=lambda result: result.index) if refused else results


def _text_checked(body: bytes, content_type: str) -> bool:
    """Say whether no text parsed from this body can hold a NUL or a lone surrogate."""
    kind, charset = media_type(content_type)
    return (
        kind == "application/json" and utf8_charset(charset) and not json_may_hold_unstorable(body)
    )
