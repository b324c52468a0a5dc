"""Template filters of the admin pages: times, durations, money, statuses, IVR input."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from app.infobip.codes import AFTER_FINAL, LATE, Outcome
from app.reports.events import (
    ALREADY_ACCEPTED,
    IN_INFOBIP_LOGS,
    NOT_IN_INFOBIP_LOGS,
    UNMATCHED,
)

# Names of the decoded IVR input fields (INFOBIP.md §4: voiceCall.ivr in v2; a v1
# report's dtmfCodesAsJson is stored as collectedDtmfs).
COLLECTED_LABELS = {
    "collectedDtmfs": "Keys pressed",
    "collectedMappedDtmfs": "Mapped keys",
    "spokenInput": "Spoken input",
    "matchedSpokenInput": "Matched spoken input",
}
OUTCOMES = tuple(outcome.value for outcome in Outcome)
# Why an event did not change its call (app.infobip.codes.PRECEDENCE, app.reports.record).
REASONS = {
    AFTER_FINAL: "the call already had a final status",
    LATE: "not newer than the call's status",
    UNMATCHED: "no call had this messageId yet",
    ALREADY_ACCEPTED: "Infobip already had this call (resubmission)",
    IN_INFOBIP_LOGS: "Infobip's logs show it accepted (reconciliation)",
    NOT_IN_INFOBIP_LOGS: "not in Infobip's logs long after it was due: may be resubmitted",
}
STATUS_GROUPS = ("PENDING", "DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED")


def when(value: str | None) -> str:
    """Show an ISO 8601 UTC time as `2026-04-02 07:00:41 UTC`."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(value: str | None) -> str:
    """Show an ISO 8601 UTC time compactly for tables: `2026-04-02 07:00:41`."""
    shown = when(value)
    return shown.removesuffix(" UTC")


def reason_text(reason: str | None) -> str:
    """Explain why an event was not applied, keeping ivrdesk's code in brackets."""
    if not reason:
        return ""
    explained = REASONS.get(reason)
    return f"{explained} ({reason})" if explained else reason


def seconds(value: int | None) -> str:
    """Show a duration in seconds as `45 s`, `2 min 05 s` or `3 h 04 min`."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value} s"
    minutes, rest = divmod(value, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def money(amount: float | None, currency: str | None = None) -> str:
    """Show an amount with up to 4 decimals and its currency."""
    if amount is None:
        return "—"
    text = f"{amount:.4f}".rstrip("0").rstrip(".") if amount else "0"
    return f"{text} {currency}" if currency else text


def costs(per_currency: Mapping[str, float]) -> str:
    """Show a campaign's cost per currency, e.g. `1.23 EUR, 0.5 USD`."""
    if not per_currency:
        return "—"
    return ", ".join(money(total, currency) for currency, total in sorted(per_currency.items()))


def status_label(status: Mapping[str, Any] | None) -> str:
    """Show a status or error object by its name (falling back to its group)."""
    if not status:
        return "—"
    return str(status.get("name") or status.get("groupName") or status.get("id"))


def outcome_label(outcome: str | None) -> str:
    """Show an outcome in words: answered_human becomes `answered (human)`."""
    if not outcome:
        return "—"
    if outcome.startswith("answered_"):
        return f"answered ({outcome.removeprefix('answered_')})"
    return outcome.replace("_", " ")


def share(part: int, whole: int) -> str:
    """Show part of whole as a whole percentage."""
    return f"{round(100 * part / whole)} %" if whole else "—"


def _plain(value: Any) -> str:
    """Show one decoded input value."""
    if isinstance(value, list):
        return ", ".join(_plain(item) for item in value)
    return "—" if value is None else str(value)


def collected_rows(collected: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Flatten the decoded IVR input into (label, value) rows: ("Keys pressed: confirm", "1")."""
    rows: list[tuple[str, str]] = []
    for key, value in (collected or {}).items():
        if value is None or value == {} or value == []:
            continue
        label = COLLECTED_LABELS.get(key, key)
        if isinstance(value, Mapping):
            rows.extend((f"{label}: {name}", _plain(item)) for name, item in value.items())
        else:
            rows.append((label, _plain(value)))
    return rows


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "clock": clock,
    "reason_text": reason_text,
    "seconds": seconds,
    "money": money,
    "costs": costs,
    "status_label": status_label,
    "outcome_label": outcome_label,
    "share": share,
    "collected_rows": collected_rows,
}
