"""Sizes and ages as ``docker images`` prints them (``5.37MB``, ``2 hours ago``)."""

from __future__ import annotations

from datetime import UTC, datetime

from builder.progress.units import human_size

__all__ = ["human_age", "human_size", "parse_time", "table"]


def human_age(created: str, now: datetime | None = None) -> str:
    """``… ago`` for an RFC 3339 time, worded as docker's ``units.HumanDuration``."""
    moment = parse_time(created)
    if moment is None:
        return "N/A"
    return f"{_duration(((now or datetime.now(UTC)) - moment).total_seconds())} ago"


def _duration(total_seconds: float) -> str:
    seconds = int(total_seconds)
    minutes = int(total_seconds / 60)
    hours = int(total_seconds / 3600 + 0.5)
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(total_seconds / 3600) // 24 // 365} years"


def parse_time(text: str) -> datetime | None:
    if not text:
        return None
    trimmed = text.replace("Z", "+00:00")
    if "." in trimmed:
        head, _, tail = trimmed.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        trimmed = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits) :]}"
    try:
        moment = datetime.fromisoformat(trimmed)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def table(rows: list[list[str]]) -> str:
    """Columns padded to their widest cell and three spaces apart, as docker prints them."""
    if not rows:
        return ""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
