"""Sizes and ages as ``docker images`` prints them (``5.37MB``, ``2 hours ago``)."""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as docker's ``units.HumanSize``."""
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.3g}{_UNITS[unit]}"


def human_age(created: str, now: datetime | None = None) -> str:
    """``N units ago`` for an RFC 3339 time; ``N/A`` when there is none."""
    moment = parse_time(created)
    if moment is None:
        return "N/A"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 1:
        return "Less than a second ago"
    for limit, divisor, unit in (
        (60, 1, "second"),
        (3600, 60, "minute"),
        (86400 * 2, 3600, "hour"),
        (86400 * 14, 86400, "day"),
        (86400 * 60, 86400 * 7, "week"),
        (86400 * 365 * 2, 86400 * 30, "month"),
    ):
        if seconds < limit:
            count = seconds // divisor
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return f"{seconds // (86400 * 365)} years ago"


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
