"""Sizes, ages and tables as docker prints them."""

from __future__ import annotations

from datetime import UTC, datetime

from builder.cli.commands._humanize import human_age, human_size, parse_time, table

NOW = datetime(2024, 1, 10, 12, 0, 0, tzinfo=UTC)


def test_human_size() -> None:
    assert [human_size(size) for size in (0, 999, 1000, 1_147_371, 5_370_000_000)] == [
        "0B",
        "999B",
        "1kB",
        "1.15MB",
        "5.37GB",
    ]


def test_human_age() -> None:
    assert human_age("2024-01-10T11:59:59Z", NOW) == "1 second ago"
    assert human_age("2024-01-10T10:00:00.123456789Z", NOW) == "2 hours ago"
    assert human_age("2024-01-10T11:58:30Z", NOW) == "About a minute ago"
    assert human_age("2024-01-03T12:00:00Z", NOW) == "7 days ago"
    assert human_age("2023-12-20T12:00:00Z", NOW) == "3 weeks ago"
    assert human_age("2023-11-01T12:00:00Z", NOW) == "2 months ago"
    assert human_age("2023-01-01T12:00:00Z", NOW) == "12 months ago"
    assert human_age("2020-01-01T00:00:00Z", NOW) == "4 years ago"
    assert human_age("", NOW) == "N/A"


def test_parse_time_keeps_nanoseconds_to_micro() -> None:
    assert parse_time("2024-01-10T10:00:00.123456789Z") == datetime(2024, 1, 10, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_time("not a time") is None


def test_table() -> None:
    assert table([["A", "LONG"], ["long", "x"]]) == "A      LONG\nlong   x"
