"""Terminal tables and fields for the lookup commands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from app.lookups.paging import MAX_LIMIT

LIMIT = click.IntRange(1, MAX_LIMIT)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Lay rows out in fixed-width columns under a header and a rule; numbers align right."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        """Render one row padded to the column widths."""
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _is_number(value: Any) -> bool:
    """Say whether a cell holds a number (aligned right)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def cell(value: Any) -> str:
    """Render one table cell."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def time_cell(text: str | None) -> str:
    """Shorten an API timestamp (2026-04-02T07:00:41.500Z) for a terminal."""
    if not text:
        return "-"
    return cell(datetime.fromisoformat(text))


def named(item: dict[str, Any] | None) -> str:
    """Show a status or error object as group/name (id)."""
    if item is None:
        return "-"
    return f"{item.get('groupName') or '?'}/{item.get('name') or '?'} ({item.get('id')})"


def field_lines(pairs: Sequence[tuple[str, Any]]) -> str:
    """Lay out label-value pairs in two columns."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label.ljust(width)}  {cell(value)}" for label, value in pairs)


def money(cost: dict[str, float]) -> str:
    """Show costs per currency."""
    return ", ".join(f"{total:g} {currency}" for currency, total in sorted(cost.items())) or "-"
