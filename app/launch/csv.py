"""Turn a CSV of numbers into a launch body: a `to` column, other columns as parameters."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from app.infobip.limits import MAX_DESTINATIONS_PER_MESSAGE
from app.infobip.numbers import normalise_number

MAX_ROWS = 1_000_000


class CsvLaunchError(ValueError):
    """The CSV cannot be launched; the message lists every bad row by number."""


def read_csv_launch(
    path: Path,
    *,
    scenario_id: str,
    sender: str | None = None,
    callback_data: str | None = None,
    bulk_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Read the CSV; rows with the same parameters become messages of at most 20,000 rows."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _build(csv.DictReader(handle), scenario_id, sender, callback_data, bulk_id, name)
    except UnicodeDecodeError as exc:
        raise CsvLaunchError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise CsvLaunchError(f"{path}: not a readable CSV: {exc}") from exc


def _build(
    reader: csv.DictReader[str],
    scenario_id: str,
    sender: str | None,
    callback_data: str | None,
    bulk_id: str | None,
    name: str | None,
) -> dict[str, Any]:
    fields = [f.strip() for f in reader.fieldnames or []]
    if "to" not in fields:
        raise CsvLaunchError("the CSV needs a header row with a `to` column")
    parameter_names = [f for f in fields if f not in ("to", "messageId") and f]
    groups: dict[tuple[tuple[str, str], ...], list[dict[str, str]]] = {}
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        if number > MAX_ROWS + 1:
            raise CsvLaunchError(f"the CSV has more than {MAX_ROWS} rows")
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        try:
            to = normalise_number(row.get("to", ""))
        except ValueError as exc:
            problems.append(f"row {number}: to {row.get('to', '')!r}: {exc}")
            continue
        destination = {"to": to}
        if row.get("messageId"):
            destination["messageId"] = row["messageId"]
        key = tuple((p, row.get(p, "")) for p in parameter_names)
        groups.setdefault(key, []).append(destination)
    if problems:
        shown = problems[:50]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise CsvLaunchError(
            f"{len(problems)} bad row(s); nothing was sent\n  " + "\n  ".join(shown) + more
        )
    if not groups:
        raise CsvLaunchError("the CSV has no rows")
    messages = []
    for key, destinations in groups.items():
        common: dict[str, Any] = {"scenarioId": scenario_id}
        if sender:
            common["from"] = sender
        if callback_data:
            common["callbackData"] = callback_data
        if key:
            common["parameters"] = dict(key)
        # Infobip takes at most 20,000 destinations per message: a larger group is split.
        for start in range(0, len(destinations), MAX_DESTINATIONS_PER_MESSAGE):
            chunk = destinations[start : start + MAX_DESTINATIONS_PER_MESSAGE]
            messages.append({**common, "destinations": chunk})
    body: dict[str, Any] = {"messages": messages}
    if bulk_id:
        body["bulkId"] = bulk_id
    if name:
        body["name"] = name
    return body
