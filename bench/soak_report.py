"""Print the soak's figures: requests by kind, the first-minute baseline, the checks, a verdict."""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from typing import Any

from soak_load import ERROR, UNEXPECTED, Sample
from soak_verify import Findings

GROUPS = {"launch": "launches", "report": "extra reports", "healthz": "healthz (baseline)"}


def group_of(kind: str) -> str:
    """Return the group a request kind belongs to: launches, extra reports, lookups, healthz."""
    return next((name for prefix, name in GROUPS.items() if kind.startswith(prefix)), "lookups")


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _row(label: str, samples: list[Sample], seconds: float) -> str:
    latencies = [s[2] * 1000 for s in samples]
    errors = sum(1 for s in samples if s[4] == ERROR)
    unexpected = sum(1 for s in samples if s[4] == UNEXPECTED)
    return (f"{label:<22}{len(samples):>8}{len(samples) / seconds:>8.1f}"
            f"{statistics.median(latencies):>9.1f}{_quantile(latencies, 0.95):>9.1f}"
            f"{max(latencies):>9.0f}{errors:>7}{unexpected:>7}")  # fmt: skip


def print_requests(samples: list[Sample], seconds: float) -> None:
    """Print one line per request kind and per group, and the totals."""
    print(f"\n{'requests':<22}{'count':>8}{'per s':>8}{'median':>9}{'p95':>9}{'max':>9}"
          f"{'errors':>7}{'unexp.':>7}")  # fmt: skip
    print(
        "(latencies in ms; errors: 5xx or no answer; unexp.: a 4xx, or a 2xx other than the "
        "contract's)"
    )
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    by_group: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample[0]].append(sample)
        by_group[group_of(sample[0])].append(sample)
    for kind in sorted(by_kind, key=lambda k: (group_of(k), k)):
        print(_row(f"  {kind}", by_kind[kind], seconds))
    for group in sorted(by_group):
        print(_row(group, by_group[group], seconds))
    print(_row("all", samples, seconds))


def server_group(method: str, path: str) -> str:
    """Return the group of a request in the access log (its duration is the server's own)."""
    if path.startswith("/notify/"):
        return "report POSTs (all)"
    if path == "/healthz":
        return "healthz (baseline)"
    return "launches" if method == "POST" and path == "/api/v1/campaigns" else "lookups"


def print_baseline(title: str, timed: list[tuple[str, float, float]], seconds: float) -> None:
    """Print each group's median in the baseline window and in the last one, and their ratio.

    timed holds (group, second of the load, milliseconds). The baseline window is the
    second minute of load (the first is warm-up: connection pools, caches); the last window
    is the last minute. A run shorter than 5 minutes uses fifths of it instead.
    """
    window = min(60.0, seconds / 5)
    print(f"  {title}: median in {window:.0f}-{2 * window:.0f} s -> last {window:.0f} s")
    by_group: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for group, start, milliseconds in timed:
        first, last = by_group[group]
        if window <= start < 2 * window:
            first.append(milliseconds)
        elif seconds - window <= start < seconds:
            last.append(milliseconds)
    for group, (first, last) in sorted(by_group.items()):
        if first and last:
            before, after = statistics.median(first), statistics.median(last)
            ratio = f"{after / before:.2f}x" if before else "n/a"
            print(f"    {group:<22}{before:8.1f} ms -> {after:8.1f} ms   ratio {ratio}")


def print_report(
    args: argparse.Namespace,
    load: dict[str, Any],
    state: dict[str, Any],
    findings: Findings,
    logs: dict[str, Any],
    sizes: dict[str, int],
) -> int:
    """Print everything; return 0 when the soak passed, else 1."""
    seconds = load["load_seconds"]
    samples = [s for role in load["roles"].values() for s in role["samples"]]
    problems = [p for role in load["roles"].values() for p in role["problems"]]
    print(f"\nivrdesk soak: {seconds / 60:.1f} min of load, PostgreSQL, gunicorn "
          f"deploy/gunicorn.conf.py (2 workers x 4 threads), 1 dispatcher, fake Infobip "
          f"(reports after {args.delay:g} s)")  # fmt: skip
    print_requests(samples, seconds)
    print("\nbaseline, measured in the same run: the second minute of load against the last")
    timed = [(group_of(s[0]), s[1], s[2] * 1000) for s in samples]
    print_baseline("client latency", timed, seconds)
    server = [(server_group(m, p), at - load["wall0"], ms) for at, m, p, ms in logs["access"]]
    print_baseline("server time (gunicorn access log)", server, seconds)
    memory = load["memory"]
    print(f"\ngunicorn workers: {memory[0][1] / 1024:.0f} MB at start, "
          f"{max(m[1] for m in memory) / 1024:.0f} MB at most, {memory[-1][1] / 1024:.0f} MB "
          f"at the end ({load['workers_seen']} worker processes seen; max_requests recycles "
          f"them)")  # fmt: skip
    print(f"fake Infobip: {state['accepted']} calls accepted, {state['reports_posted']} "
          f"reports posted, {state['reports_failed']} failed; drained in "
          f"{state['drain_seconds']:.1f} s {state['reconcile']}")  # fmt: skip
    print("database: " + ", ".join(f"{name} {count}" for name, count in sizes.items()))
    print("\nchecks")
    for name, value in findings.figures.items():
        print(f"  {name:<62}{value:>9}")
    errors = sum(1 for s in samples if s[4] == ERROR)
    unexpected = sum(1 for s in samples if s[4] == UNEXPECTED)
    lost = findings.figures.get("lost reports", 0)
    duplicates = findings.figures.get("messageIds sent to the fake Infobip more than once", 0)
    print(f"  {'5xx answers in the gunicorn access log':<62}{logs['5xx']:>9}")
    print(f"  {'errors logged by gunicorn, the dispatcher, the simulator':<62}"
          f"{len(logs['errors']):>9}")  # fmt: skip
    for warning, count in logs["warnings"].most_common(8):
        print(f"  warning x{count}: {warning}")
    crashes = [p for p in problems if p.startswith("load generator")]
    for line in (problems[:20] + findings.examples)[:30]:
        print(f"  ! {line[:400]}")
    for error in logs["errors"][:3]:
        print(f"\n{error[:4000]}")
    failed = (errors or unexpected or lost or duplicates or logs["5xx"] or logs["errors"]
              or findings.failures or crashes)  # fmt: skip
    print(f"\nerrors (5xx or connection) {errors}, unexpected answers (4xx or wrong 2xx) "
          f"{unexpected}, "
          f"lost reports {lost}, duplicate sends {duplicates} (target: 0 and 0): "
          f"{'FAILED' if failed else 'passed'}")  # fmt: skip
    for failure in findings.failures:
        print(f"  failed check: {failure}")
    return 1 if failed else 0
