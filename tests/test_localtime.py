"""Local calendar bins: where days, weeks, months and hours start in a zone, and the regrouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tokenboard import localtime as lt


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def lengths(bins: lt.Bins) -> list[timedelta]:
    return [b - a for a, b in zip(bins.edges, bins.edges[1:], strict=False)]


def test_days_in_new_york_start_at_local_midnight_across_dst():
    bins = lt.plan(utc(2025, 3, 7), utc(2025, 3, 12), "America/New_York", "1d")
    assert bins.edges[0] == utc(2025, 3, 6, 5)  # midnight EST of the day the range starts in
    assert utc(2025, 3, 9, 5) in bins.edges and utc(2025, 3, 10, 4) in bins.edges  # midnight EDT
    assert timedelta(hours=23) in lengths(bins)  # the day the clocks go forward
    assert [(p.size, p.phase) for p in bins.pieces] == [
        (timedelta(days=1), timedelta(hours=5)),
        (timedelta(days=1), timedelta(hours=4)),
    ]
    assert bins.pieces[0].end == bins.pieces[1].start == utc(2025, 3, 9, 7)  # 02:00 EST
    assert bins.head_partial


def test_the_day_dst_ends_has_25_hours():
    bins = lt.plan(utc(2025, 11, 1), utc(2025, 11, 4), "America/New_York", "1d")
    assert timedelta(hours=25) in lengths(bins)


def test_kolkata_days_and_hours_start_half_past_the_utc_hour():
    days = lt.plan(utc(2025, 3, 1), utc(2025, 3, 4), "Asia/Kolkata", "1d")
    assert days.edges[:2] == (utc(2025, 2, 28, 18, 30), utc(2025, 3, 1, 18, 30))
    assert len(days.pieces) == 1 and days.pieces[0].phase == timedelta(hours=18, minutes=30)
    hours = lt.plan(utc(2025, 3, 1), utc(2025, 3, 2), "Asia/Kolkata", "1h")
    assert {e.minute for e in hours.edges} == {30}
    assert hours.pieces[0].phase == timedelta(minutes=30)


def test_utc_bins_are_the_plain_grid_in_one_query():
    bins = lt.plan(utc(2025, 3, 1, 13, 7), utc(2025, 3, 2, 13, 7), "UTC", "15m")
    assert len(bins.pieces) == 1 and bins.pieces[0].phase == timedelta(0)
    assert bins.edges[0] == utc(2025, 3, 1, 13) and bins.edges[-1] == utc(2025, 3, 2, 13, 15)
    assert set(lengths(bins)) == {timedelta(minutes=15)}


def test_hours_when_dst_ends_are_two_bins_not_one():
    bins = lt.plan(utc(2025, 11, 2, 4), utc(2025, 11, 2, 8), "America/New_York", "1h")
    assert list(bins.edges) == [utc(2025, 11, 2, h) for h in range(4, 9)]  # 01:00 EDT and 01:00 EST


def test_six_hour_bins_follow_the_wall_clock():
    bins = lt.plan(utc(2025, 11, 2, 4), utc(2025, 11, 2, 20), "America/New_York", "6h")
    assert bins.edges[:3] == (utc(2025, 11, 2, 4), utc(2025, 11, 2, 11), utc(2025, 11, 2, 17))  # 7 h


def test_weeks_start_on_monday_and_months_on_the_first():
    weeks = lt.plan(utc(2025, 3, 5), utc(2025, 3, 20), "Europe/Berlin", "1w")
    assert [e.astimezone(lt.zone("Europe/Berlin")).strftime("%a %H:%M") for e in weeks.edges] == [
        "Mon 00:00"
    ] * len(weeks.edges)
    months = lt.plan(utc(2025, 1, 10), utc(2025, 5, 2), "Asia/Tokyo", lt.MONTH)
    assert months.edges[:2] == (utc(2024, 12, 31, 15), utc(2025, 1, 31, 15))
    assert all(p.size == timedelta(days=1) for p in months.pieces)


def test_a_midnight_that_never_happens_starts_the_day_when_the_clock_jumps():
    # Chile moves its clocks from 00:00 to 01:00 on 7 September 2025.
    bins = lt.plan(utc(2025, 9, 6, 12), utc(2025, 9, 8, 12), "America/Santiago", "1d")
    assert utc(2025, 9, 7, 4) in bins.edges  # 01:00 -03, the first instant of that day
    assert timedelta(hours=23) in lengths(bins)


def test_unknown_zone_and_unit_are_value_errors():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        lt.plan(utc(2025, 1, 1), utc(2025, 1, 2), "Mars/Base", "1d")
    with pytest.raises(ValueError, match="unknown bin"):
        lt.plan(utc(2025, 1, 1), utc(2025, 1, 2), "UTC", "2d")
    assert not lt.is_zone("../../etc/passwd") and lt.is_zone("Asia/Kathmandu")


def test_regroup_adds_the_pieces_of_a_dst_day_into_that_local_day():
    bins = lt.plan(utc(2025, 3, 8, 5), utc(2025, 3, 11, 4), "America/New_York", "1d")
    first, second = bins.pieces
    # What each piece's query returns: bins on its own grid (EST 05:00, then EDT 04:00).
    a = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2025-03-08T05:00Z", "2025-03-09T05:00Z"], utc=True),
            "series": ["x", "x"],
            "tokens": [1.0, 2.0],
            "peak": [5, 7],
        }
    )
    b = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2025-03-09T04:00Z", "2025-03-10T04:00Z"], utc=True),
            "series": ["x", "x"],
            "tokens": [4.0, 8.0],
            "peak": [6, 1],
        }
    )
    out = bins.regroup([(first, a), (second, b)], maxima=("peak",))
    assert list(out["timestamp"]) == [pd.Timestamp(t) for t in bins.edges[:3]]
    assert list(out["tokens"]) == [1.0, 6.0, 8.0]  # 9 March: 2 before 02:00 EST, 4 after
    assert list(out["peak"]) == [5, 7, 1]
    assert list(out.columns) == ["timestamp", "series", "tokens", "peak"]


def test_incomplete_bins_at_either_end():
    bins = lt.plan(utc(2025, 3, 1, 14, 7), utc(2025, 3, 3, 14, 7), "UTC", "1d")
    assert bins.head_partial  # the first day starts before the range
    assert bins.incomplete_from(utc(2025, 3, 3, 14, 8), 180) == utc(2025, 3, 3)  # cut by the end
    assert bins.incomplete_from(utc(2025, 3, 8), 180) == utc(2025, 3, 3)
    hour = lt.plan(utc(2025, 3, 3, 13), utc(2025, 3, 3, 14), "UTC", "5m")
    assert hour.incomplete_from(utc(2025, 3, 3, 13, 59, 30), 180) == utc(2025, 3, 3, 13, 55)  # ingesting
    aligned = lt.plan(utc(2025, 3, 1), utc(2025, 3, 3), "UTC", "1d")
    assert aligned.incomplete_from(utc(2025, 3, 5), 180) is None
    assert not aligned.head_partial
