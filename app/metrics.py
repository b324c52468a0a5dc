"""Prometheus metrics: module-level metric objects, the helpers that feed them, the scrape.

Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR
(deploy/gunicorn.conf.py sets it up) and a scrape adds them up across workers;
without that variable the process's default registry is served. The calls
gauge is read from the database at scrape time, so it is right on every host.
No Flask here: the web layer, the dispatcher and the CLI may all call the helpers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text

from app.infobip.client import FailureKind, ProviderError
from app.models import Call, CallEvent, EventSource, SubmitState
from app.reports.events import APPLIED, DUPLICATE, INVALID, NOT_APPLIED, UNMATCHED

log = logging.getLogger(__name__)

# The classic text format, which every Prometheus version scrapes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REPORT_RESULTS = (APPLIED, NOT_APPLIED, DUPLICATE, UNMATCHED, INVALID)
INFOBIP_RESULTS = ("ok", *(kind.value for kind in FailureKind), "error")
QUERY_TIMEOUT_MS = 2000
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A synchronous launch may wait for Infobip for a minute or two: the top buckets show it.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Infobip retries unanswered calls for hours (INFOBIP.md): reports may arrive that late.
DELAY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600, 48 * 3600)

if multiproc_dir := os.environ.get(MULTIPROC_ENV):
    # Each process opens its sample files there as soon as a metric is defined.
    os.makedirs(multiproc_dir, exist_ok=True)

REQUESTS = Counter(
    "ivrdesk_http_requests", "HTTP requests answered", ["endpoint", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "ivrdesk_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["endpoint"],
    buckets=REQUEST_BUCKETS,
)
REPORTS_RECEIVED = Counter(
    "ivrdesk_reports_received", "Delivery report results received on the notify endpoint"
)
REPORTS = Counter(
    "ivrdesk_reports", "What became of each received delivery report result", ["result"]
)
REPORT_DELAY_SECONDS = Histogram(
    "ivrdesk_report_delay_seconds",
    "Time from a report's event (occurred_at) to its arrival at ivrdesk (received_at)",
    buckets=DELAY_BUCKETS,
)
INFOBIP_REQUESTS = Counter(
    "ivrdesk_infobip_requests", "Requests sent to Infobip", ["operation", "result"]
)
INFOBIP_SECONDS = Histogram(
    "ivrdesk_infobip_request_duration_seconds",
    "Time Infobip took to answer (or to fail)",
    ["operation"],
    buckets=REQUEST_BUCKETS,
)

for _result in REPORT_RESULTS:
    REPORTS.labels(_result)


class ReportResult(Protocol):
    """What count_report_results needs of app.reports.record.ItemResult."""

    @property
    def result(self) -> str:
        """Name the result: applied, not_applied, duplicate, unmatched or invalid."""
        ...


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and its latency."""
    method = method if method in HTTP_METHODS else "other"
    REQUESTS.labels(endpoint, method, str(status)).inc()
    REQUEST_SECONDS.labels(endpoint).observe(seconds)


def count_report_results(results: Iterable[ReportResult]) -> None:
    """Count the results of one notify POST (app.reports.record.record_items' answer)."""
    counts: dict[str, int] = {}
    for item in results:
        counts[item.result] = counts.get(item.result, 0) + 1
    REPORTS_RECEIVED.inc(sum(counts.values()))
    for result, count in counts.items():
        REPORTS.labels(result).inc(count)


def observe_report_delay(occurred_at: datetime | None, received_at: datetime) -> None:
    """Record how late one report arrived; a report without a time is skipped."""
    if occurred_at is not None:
        REPORT_DELAY_SECONDS.observe(max(0.0, (received_at - occurred_at).total_seconds()))


def observe_report_delays(items: Iterable[object], received_at: datetime) -> None:
    """Record the delay of every parsed item that carries an occurred_at (invalid ones do not)."""
    for item in items:
        occurred_at = getattr(item, "occurred_at", None)
        if isinstance(occurred_at, datetime):
            observe_report_delay(occurred_at, received_at)


def observe_infobip_call(operation: str, result: str, seconds: float) -> None:
    """Count one request to Infobip by its result, with its latency."""
    INFOBIP_REQUESTS.labels(operation, result).inc()
    INFOBIP_SECONDS.labels(operation).observe(seconds)


@contextmanager
def timed_infobip_call(operation: str) -> Iterator[None]:
    """Time the Infobip request inside the block; a ProviderError is counted by its kind."""
    started = time.perf_counter()
    result = "ok"
    try:
        yield
    except ProviderError as exc:
        result = exc.kind.value
        raise
    except Exception:
        result = "error"
        raise
    finally:
        observe_infobip_call(operation, result, time.perf_counter() - started)


# What a reconciliation recorded (app.reports.reconcile), by its events' submit state:
# a submission settled as accepted or failed, or (none) a final status from the logs.
RECONCILED_KINDS = {"accepted": "accepted", "failed": "failed", None: "final"}


@dataclass(frozen=True)
class Counts:
    """What one scrape reads from the database."""

    calls: dict[str, int]
    reconciled: dict[str, int]


class CallsCollector:
    """Gauges read from the database, so right on every host and for every process.

    ivrdesk_calls: calls by submit state. ivrdesk_reconciled_events: events the
    reconciliation recorded (it runs in the dispatcher, which publishes no metrics
    of its own), counted through a partial index. Cached briefly.
    """

    def __init__(self, engine: Engine, ttl: float = 30.0) -> None:
        """Count through this engine at most once per ttl seconds."""
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._counted_at = float("-inf")
        self._counts: Counts | None = None

    def counts(self) -> Counts | None:
        """Return the counts, or None when the database cannot be read."""
        with self._lock:
            if time.monotonic() - self._counted_at >= self.ttl:
                self._counts = self._count()
                self._counted_at = time.monotonic()
            return self._counts

    def _count(self) -> Counts | None:
        """Count with two GROUP BYs; None when the database fails."""
        calls = {state.value: 0 for state in SubmitState}
        reconciled = dict.fromkeys(RECONCILED_KINDS.values(), 0)
        by_state = select(Call.submit_state, func.count()).group_by(Call.submit_state)
        by_kind = (
            select(CallEvent.submit_state, func.count())
            .where(CallEvent.source == EventSource.RECONCILE.value)
            .group_by(CallEvent.submit_state)
        )
        try:
            with self.engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    # A scrape must stay cheap: rather no gauge than a loaded database.
                    connection.execute(text(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}"))
                for state, number in connection.execute(by_state):
                    calls[state] = number
                for submit_state, number in connection.execute(by_kind):
                    kind = RECONCILED_KINDS.get(submit_state)
                    if kind is not None:
                        reconciled[kind] += number
        except Exception as exc:  # a scrape must still answer: the gauges are left out
            log.warning("database gauges not collected: %s", type(exc).__name__)
            return None
        return Counts(calls, reconciled)

    def collect(self) -> Iterable[Metric]:
        """Yield the gauges (nothing when the database cannot be read)."""
        counts = self.counts()
        if counts is None:
            return []
        calls = GaugeMetricFamily("ivrdesk_calls", "Calls by submit state", labels=["submit_state"])
        for state, number in sorted(counts.calls.items()):
            calls.add_metric([state], number)
        reconciled = GaugeMetricFamily(
            "ivrdesk_reconciled_events",
            "Events recorded from Infobip's voice logs: submissions settled as accepted or "
            "failed, final statuses of lost reports",
            labels=["kind"],
        )
        for kind, number in sorted(counts.reconciled.items()):
            reconciled.add_metric([kind], number)
        return [calls, reconciled]


class _ProcessRegistry:
    """This process's default registry, as one collector of a per-scrape registry."""

    def collect(self) -> Iterable[Metric]:
        """Yield everything the default registry holds."""
        return REGISTRY.collect()


def multiprocess_mode() -> bool:
    """Say whether samples are shared across processes through PROMETHEUS_MULTIPROC_DIR."""
    return bool(os.environ.get(MULTIPROC_ENV))


def render(*extra: Collector) -> bytes:
    """Return the Prometheus text for every worker's samples plus the extra collectors."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(_ProcessRegistry())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
