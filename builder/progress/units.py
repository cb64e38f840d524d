"""Sizes, durations and digests as the progress views print them."""

from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as docker prints sizes (``5.37MB``)."""
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.3g}{_UNITS[unit]}"


def human_seconds(seconds: float) -> str:
    """``0.3s``, ``12.5s``, ``2m05s``: tenths below a minute, whole seconds above."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def short_digest(digest: str) -> str:
    """The first 12 hex digits of a ``sha256:`` digest, as ``docker images`` shows ids."""
    return digest.split(":", 1)[-1][:12]
