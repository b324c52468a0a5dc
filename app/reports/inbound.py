"""Raw bodies: every report body is kept, as received, before anything parses it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from app.db import select_rows, utcnow
from app.models import InboundReport

PULL_PEER = "pull"  # the peer of a body fetched from Infobip's GET /voice/1/reports


@dataclass(frozen=True)
class Inbound:
    """A raw body to keep: its bytes, content type and where it came from."""

    body: bytes
    content_type: str
    peer: str | None
    items: int | None = None  # how many results the body holds (None: unparsed)
    parse_error: str | None = None
    received_at: datetime = field(default_factory=utcnow)


def store_inbound(session: Session, inbound: Inbound) -> int:
    """Keep the raw body (one INSERT); return its id.

    On PostgreSQL the INSERT runs as a PgStatement (app.db.select_rows): its cost per
    statement is a fraction of Session.execute's.
    """
    values = {
        "received_at": inbound.received_at,
        "content_type": inbound.content_type[:200],
        "peer": inbound.peer,
        "body": inbound.body,
        "size": len(inbound.body),
        "items": inbound.items,
        "parse_error": inbound.parse_error,
    }
    ((inbound_id,),) = select_rows(session.connection(), _inbound_insert, values)
    return int(inbound_id)


@cache
def _inbound_insert() -> ReturningInsert[int]:
    """Insert a raw body, returning its id (built once; Core, not the ORM: a hot path)."""
    columns = ("received_at", "content_type", "peer", "body", "size", "items", "parse_error")
    return (
        insert(InboundReport)
        .values({name: bindparam(name) for name in columns})
        .returning(InboundReport.id)
    )
