"""The fake Infobip's GET /voice/1/reports: reports of calls sent without a notifyUrl.

INFOBIP.md §6: Infobip keeps the reports of calls launched without a notifyUrl and hands
each out only once; a report whose POST to a notifyUrl failed is not kept.
"""

from __future__ import annotations

import itertools

from werkzeug.wrappers import Request, Response

from app.infobip.limits import REPORTS_MAX_LIMIT
from app.simulator.faults import bad_request, json_response
from app.simulator.reports import Report, render_report

DEFAULT_LIMIT = 50


class Shelf:
    """The reports kept for pulling, in the order they fell due, and every body served.

    Every method runs with the simulator's lock held.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._seq = itertools.count()
        self.clear()

    def clear(self) -> None:
        """Forget every kept report and every body served."""
        self._kept: dict[int, Report] = {}
        self._served: list[bytes] = []

    def __len__(self) -> int:
        """Count the reports waiting to be pulled."""
        return len(self._kept)

    def keep(self, report: Report) -> None:
        """Keep a due report of a call sent without a notifyUrl."""
        self._kept[next(self._seq)] = report

    def take(self, bulk_id: str | None, message_id: str | None, limit: int) -> list[Report]:
        """Remove and return up to limit kept reports matching the filters."""
        seqs: list[int] = []
        for seq, report in self._kept.items():
            if len(seqs) == limit:
                break
            if bulk_id in (None, report.message.bulk_id) and message_id in (
                None,
                report.message_id,
            ):
                seqs.append(seq)
        return [self._kept.pop(seq) for seq in seqs]

    def served(self) -> list[bytes]:
        """Return every body GET /voice/1/reports answered with, in order."""
        return list(self._served)

    def answer(self, request: Request) -> Response:
        """Handle GET /voice/1/reports (authorization checked by the caller)."""
        bulk_id, message_id = request.args.get("bulkId"), request.args.get("messageId")
        try:
            limit = min(
                max(int(request.args.get("limit", str(DEFAULT_LIMIT))), 1), REPORTS_MAX_LIMIT
            )
        except ValueError:
            return bad_request({"limit": ["must be a number"]})
        taken = self.take(bulk_id, message_id, limit)
        response = json_response(200, {"results": [render_report(report) for report in taken]})
        self._served.append(response.get_data())
        return response
