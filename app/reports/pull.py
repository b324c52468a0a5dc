"""Pull the reports Infobip keeps for calls sent without a notifyUrl (INFOBIP.md §6).

Infobip hands each report out only once: every body is stored raw, exactly as received,
and committed before it is recorded (event source `pull`) through the one recording path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.infobip.client import InfobipClient, ProviderError, Pulled
from app.infobip.limits import REPORTS_MAX_LIMIT
from app.models import InboundReport
from app.reports.inbound import PULL_PEER, Inbound, store_inbound
from app.reports.parse import ReportParseError
from app.reports.record import COUNT_NAMES, describe_counts
from app.reports.replay import replay_inbound

log = logging.getLogger(__name__)

MAX_PULLS = 10_000  # a safety stop: 10 million reports in one run


@dataclass
class PullSummary:
    """What a pull recorded: bodies kept, reports in them, and the count of each result."""

    bodies: int = 0
    reports: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_NAMES.values(), 0))

    def add(self, reports: int, answer: dict[str, Any]) -> None:
        """Count one recorded body."""
        self.bodies += 1
        self.reports += reports
        for name in self.counts:
            self.counts[name] += answer[name]

    def line(self) -> str:
        """Say the totals in one line: `pulled N report(s): applied ..., invalid ...`."""
        return f"pulled {self.reports} report(s): {describe_counts(self.counts)}"


class PullError(Exception):
    """A pull stopped: Infobip failed, or handed out a body that cannot be parsed (kept)."""

    def __init__(self, message: str, summary: PullSummary) -> None:
        """Keep what was recorded before the pull stopped."""
        super().__init__(message)
        self.summary = summary


def keep_pulled(sessions: sessionmaker[Session], pulled: Pulled) -> int:
    """Store a pulled body and commit it at once; return its inbound report id."""
    with sessions() as session:
        inbound = Inbound(pulled.body, pulled.content_type, PULL_PEER, items=pulled.count)
        inbound_id = store_inbound(session, inbound)
        session.commit()
    return inbound_id


def record_pulled(sessions: sessionmaker[Session], inbound_id: int) -> tuple[int, dict[str, Any]]:
    """Record a kept body's reports; return how many it holds and the notify-style answer.

    An unparsable body keeps its parse_error and raises ReportParseError.
    """
    with sessions() as session:
        inbound = session.get_one(InboundReport, inbound_id)
        try:
            answer = replay_inbound(session, inbound)
        except ReportParseError as exc:
            inbound.parse_error = str(exc)
            session.commit()
            raise
        session.commit()
        return inbound.items or 0, answer


def pull_reports(
    sessions: sessionmaker[Session], client: InfobipClient, *, bulk_id: str | None = None
) -> PullSummary:
    """Fetch, keep and record reports until Infobip has none left; raise PullError on failure.

    Nothing already kept is lost when a pull stops: each body was committed first.
    """
    summary = PullSummary()
    for _ in range(MAX_PULLS):
        try:
            pulled = client.pull_reports(bulk_id=bulk_id, limit=REPORTS_MAX_LIMIT)
        except ProviderError as exc:
            message = f"pulling stopped after {summary.reports} report(s): {exc}"
            raise PullError(message, summary) from exc
        if pulled.count == 0:
            break
        inbound_id = keep_pulled(sessions, pulled)
        try:
            reports, answer = record_pulled(sessions, inbound_id)
        except ReportParseError as exc:
            message = (
                f"pulling stopped after {summary.reports} report(s): pulled body {inbound_id} "
                f"cannot be parsed ({exc}); it is kept in inbound_reports"
            )
            raise PullError(message, summary) from exc
        summary.add(reports, answer)
        if reports == 0:
            break
    return summary


def pull_duty(sessions: sessionmaker[Session], client: InfobipClient) -> PullSummary:
    """Pull as the dispatcher does: a stopped pull is one warning line, tried again next time."""
    try:
        summary = pull_reports(sessions, client)
    except PullError as exc:
        log.warning("%s; trying again at the next pull", exc)
        return exc.summary
    if summary.reports:
        log.info("%s", summary.line())
    return summary
