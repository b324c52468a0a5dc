"""Record one notify POST: keep its raw body, then record every result; never commits.

Flask-free, so that the view (app/web/webhooks.py) and the fast lane in front of
Flask (app/web/notify_lane.py) store a POST the same way. DESIGN.md "Receiving
delivery reports": the raw body is kept in the transaction that records its items.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from app.db import utcnow
from app.models import InboundReport
from app.pg import select_rows
from app.reports.batch import record_batch
from app.reports.parse import DeliveryReport, ParsedItem, media_type, utf8_charset
from app.reports.record import ItemResult, record_items
from app.reports.single_pg import record_single
from app.text import json_may_hold_unstorable

log = logging.getLogger(__name__)


def store_inbound(
    session: Session,
    body: bytes,
    *,
    content_type: str,
    peer: str | None,
    items: int | None,
    parse_error: str | None,
) -> tuple[int, datetime]:
    """Keep the raw body (one INSERT); return its id and the time it was received.

    On PostgreSQL the INSERT runs as a PgStatement (app.pg.select_rows): a 100-result
    POST is a few statements, and Session.execute's own cost per statement would be
    a good part of the CPU the statement takes.
    """
    received_at = utcnow()
    values = {
        "received_at": received_at, "content_type": content_type[:200], "peer": peer,
        "body": body, "size": len(body), "items": items, "parse_error": parse_error,
    }  # fmt: skip
    ((inbound_id,),) = select_rows(session.connection(), _inbound_insert, values)
    return inbound_id, received_at


@cache
def _inbound_insert() -> ReturningInsert[int]:
    """Insert a raw body, returning its id (built once; Core, not the ORM: a hot path)."""
    columns = ("received_at", "content_type", "peer", "body", "size", "items", "parse_error")
    return (
        insert(InboundReport)
        .values({name: bindparam(name) for name in columns})
        .returning(InboundReport.id)
    )


def record_post(
    session: Session,
    items: list[ParsedItem],
    *,
    body: bytes,
    content_type: str,
    peer: str | None,
) -> list[ItemResult]:
    """Store the body and record its items in the session's transaction.

    One report on PostgreSQL is one statement (app.reports.single_pg); several are a few
    set-based statements (app.reports.batch). When something in the POST cannot be stored
    as a whole, it is redone item by item, each in its own savepoint, so that the
    raw body and the good items are kept. A UTF-8 JSON body without the escapes that
    make a NUL or a surrogate spares the batch a scan of every text for them.
    OperationalError (the database is gone, a lock conflict) is raised for the caller
    to retry or refuse.
    """
    try:
        if (
            len(items) == 1
            and isinstance(items[0], DeliveryReport)
            and session.get_bind().dialect.name == "postgresql"
        ):
            result = record_single(
                session.connection(), items[0], body=body, content_type=content_type,
                peer=peer, received_at=utcnow(),
            )  # fmt: skip
            if result is not None:
                return [result]
        inbound_id, received_at = store_inbound(
            session, body, content_type=content_type, peer=peer, items=len(items), parse_error=None
        )
        return record_batch(session, items, received_at=received_at, inbound_report_id=inbound_id,
                            text_checked=_text_checked(body, content_type))  # fmt: skip
    except OperationalError:
        raise
    except DBAPIError as exc:
        log.warning("report batch fell back to item-by-item recording: %s", type(exc).__name__)
        session.rollback()
        inbound_id, received_at = store_inbound(
            session, body, content_type=content_type, peer=peer, items=len(items), parse_error=None
        )
        return record_items(session, items, received_at=received_at, inbound_report_id=inbound_id)


def _text_checked(body: bytes, content_type: str) -> bool:
    """Say whether no text parsed from this body can hold a NUL or a lone surrogate."""
    kind, charset = media_type(content_type)
    return (
        kind == "application/json" and utf8_charset(charset) and not json_may_hold_unstorable(body)
    )
