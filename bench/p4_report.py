"""P4 report: the figures of bench/lookups.py as a table with targets, and query plans."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import psycopg
from p4_data import BIG, HOT_NUMBER, SMALL
from p4_measure import (
    CALL_SQL,
    CAMPAIGN_SQL,
    EXPORT_CHUNK_SQL,
    ONE_PASS_SQL,
    SEARCH_SQL,
    SUMMARY_SQL,
    VIEW_SQL,
    Timings,
)

TARGET_CALL_MS = 5.0
TARGET_SEARCH_MS = 20.0
TARGET_SUMMARY_MS = 1000.0
FLAT_RATIO = 1.25  # big export's peak RSS over the small one's: at most this is constant


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def explain(conn: psycopg.Connection, title: str, statement: str, params: list[Any]) -> None:
    """Print EXPLAIN (ANALYZE, BUFFERS) of one statement."""
    plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).fetchall()
    conn.rollback()
    print(f"\n-- {title}")
    for (line,) in plan:
        print(f"   {line}")


def _row(name: str, timings: Timings, target: str, verdict: str) -> str:
    ours = timings.median("http")
    sql = f"{'':9s} {'':9s} {'':8s}"
    if timings.sql:
        base = timings.median("sql")
        sql = f"{base:9.1f} {timings.p95('sql'):9.1f} {ours / base:7.1f}x"
    return (
        f"{name:34s} {ours:9.1f} {timings.p95('http'):9.1f} {timings.worker_cpu:9.1f} {sql}  "
        f"{target:>9s}  {verdict}"
    )


def print_results(args: argparse.Namespace, results: dict[str, Any], big: int, small: int) -> None:
    """Print the summary table, with targets, and the export figures."""
    missed = results["missed"]
    call, search, summary = results["call"], results["search"], results["summary"]
    met_call = call.median("http") < TARGET_CALL_MS
    met_search = search.median("http") < TARGET_SEARCH_MS
    met_summary = summary.median("http") < TARGET_SUMMARY_MS
    missed.extend(
        name
        for name, met in (("call", met_call), ("search", met_search), ("summary", met_summary))
        if not met
    )
    print(
        "\nLookups (ms; ivrdesk = HTTP GET on loopback through gunicorn; app CPU = the gunicorn"
        "\nworkers' CPU time per request; SQL = the same statements as bare SQL through psycopg):"
    )
    print(
        f"{'lookup':34s} {'median':>9s} {'p95':>9s} {'app CPU':>9s} {'SQL med':>9s} "
        f"{'SQL p95':>9s} {'ratio':>8s}  {'target':>9s}  result"
    )
    print(_row("HTTP floor: GET /healthz, no SQL", results["floor"], "(info)", ""))
    print(_row(f"call by messageId (n={len(call.http)})", call, "< 5 ms", _verdict(met_call)))
    print(
        _row(
            f"search by number (n={len(search.http)}, ~{results['rows']:.1f} rows)",
            search,
            "< 20 ms",
            _verdict(met_search),
        )
    )
    print(
        _row(f"search, number with {big // 500 + small // 500} calls", results["hot"], "(info)", "")
    )
    print(
        _row(
            f"campaign summary, {big:,} (n={len(summary.http)})",
            summary,
            "< 1 s",
            _verdict(met_summary),
        )
    )
    for name, times in (
        ("report_campaign_summary view", results["view"]),
        ("summary as one grouped scan", results["one_pass"]),
    ):
        print(
            f"{name:34s} {'':9s} {'':9s} {'':9s} "
            f"{statistics.median(times):9.1f} {max(times):9.1f} {'':8s}  {'(info)':>9s}"
        )
    print(
        "\nCSV export (medians; ivrdesk streamed over HTTP and discarded; baseline = COPY ... "
        "TO STDOUT of the same columns through psycopg):"
    )
    peaks = {}
    for bulk_id, calls in ((SMALL, small), (BIG, big)):
        runs = results[bulk_id]
        seconds = statistics.median(r[0].seconds for r in runs)
        copy = statistics.median(r[2].seconds for r in runs)
        first = statistics.median(r[0].first_byte for r in runs)
        size = runs[0][0].size
        rows = runs[0][0].rows
        peaks[bulk_id] = statistics.median(r[1].peak for r in runs)
        before = statistics.median(r[1].before for r in runs)
        cpu = statistics.median(r[1].cpu for r in runs)
        print(
            f"  {bulk_id} ({calls:,} calls): {rows:,} rows, {size / 1e6:.1f} MB in "
            f"{seconds:.2f} s ({rows / seconds:,.0f} rows/s, first byte {first * 1000:.0f} ms); "
            f"COPY {copy:.2f} s; ratio {seconds / copy:.1f}x; worker CPU {cpu:.1f} s; "
            f"worker RSS {before:.0f} MB "
            f"before, peak {peaks[bulk_id]:.0f} MB"
        )
        if rows != calls:
            print(f"  !! {bulk_id}: {rows} rows exported, {calls} expected")
    chunks = results["chunks"]
    print(
        f"  {BIG}: the export's 1,000-row keyset queries alone (no CSV): "
        f"{chunks.seconds:.2f} s for {chunks.rows:,} rows"
    )
    ratio = peaks[BIG] / peaks[SMALL]
    met_memory = ratio <= FLAT_RATIO
    if not met_memory:
        missed.append("memory")
    print(
        f"  memory: peak worker RSS {peaks[BIG]:.0f} MB exporting {big:,} calls vs "
        f"{peaks[SMALL]:.0f} MB exporting {small:,}: ratio {ratio:.2f} "
        f"(target <= {FLAT_RATIO}, constant memory): {_verdict(met_memory)}"
    )
    print(
        f"\nsamples: {args.samples} random stored calls and numbers; {args.runs} summaries; "
        f"{args.export_runs} exports per campaign; seed {args.seed}"
    )


def print_plans(
    conn: psycopg.Connection, which: list[str] | None, message_id: str, number: str
) -> None:
    """EXPLAIN ANALYZE the bare SQL of the lookups named (all when None)."""
    wanted = set(which) if which is not None else {"call", "search", "summary", "memory"}
    print("\nQuery plans (EXPLAIN ANALYZE, BUFFERS) of " + ", ".join(sorted(wanted)) + ":")
    campaign = conn.execute(CAMPAIGN_SQL, [BIG]).fetchone()
    assert campaign is not None
    if "call" in wanted:
        explain(conn, "call by messageId, with its history", CALL_SQL, [message_id])
    if "search" in wanted:
        explain(conn, "search by number", SEARCH_SQL, [number])
        explain(conn, "search, busy number", SEARCH_SQL, [HOT_NUMBER])
    if "summary" in wanted:
        for statement in SUMMARY_SQL:
            explain(conn, "campaign summary", statement, [campaign[0]])
        explain(conn, "report_campaign_summary", VIEW_SQL, [BIG])
        explain(
            conn, "summary as one grouped scan (not what ivrdesk runs)", ONE_PASS_SQL, [campaign[0]]
        )
    if "memory" in wanted:
        explain(conn, "export chunk (first)", EXPORT_CHUNK_SQL, [BIG, 0])
        middle = conn.execute("SELECT max(id) / 2 FROM calls").fetchone()
        assert middle is not None
        explain(conn, "export chunk (middle)", EXPORT_CHUNK_SQL, [BIG, middle[0]])
