"""The forecast on synthetic series with a known answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tokenboard import forecast

MARCH = datetime(2025, 3, 1, tzinfo=UTC)
APRIL = datetime(2025, 4, 1, tzinfo=UTC)


def daily(start: str, end: str, amount=lambda day: 100.0) -> pd.Series:
    """Amounts per UTC day in [start, end)."""
    days = pd.date_range(start, end, freq="D", inclusive="left", tz="UTC")
    return pd.Series([float(amount(d)) for d in days], index=days)


def test_a_constant_rate_crosses_its_budget_on_the_known_day() -> None:
    now = datetime(2025, 3, 10, tzinfo=UTC)  # 9 days of March spent at 100 a day
    out = forecast.outlook(daily("2025-02-01", "2025-03-10"), MARCH, APRIL, now, forecast.DAYS, limit=1550)
    assert out.spent == 900
    assert out.crossing == datetime(2025, 3, 16, 12, tzinfo=UTC)  # 650 more at 100 a day
    assert not out.crossed
    assert out.projected == pytest.approx(3100)
    assert out.forecast.index[0] == pd.Timestamp(now) and out.forecast.index[-1] == pd.Timestamp(APRIL)


def test_the_day_in_progress_counts_what_is_still_missing_of_it() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    series = pd.concat(
        [daily("2025-02-01", "2025-03-10"), pd.Series([50.0], index=[pd.Timestamp(now.date(), tz="UTC")])]
    )
    out = forecast.outlook(series, MARCH, APRIL, now, forecast.DAYS, limit=1550)
    assert out.spent == 950
    assert out.forecast.loc[pd.Timestamp("2025-03-11", tz="UTC")] == pytest.approx(1000)
    assert out.crossing == datetime(2025, 3, 16, 12, tzinfo=UTC)


def test_a_weekday_only_pattern_is_not_forecast_on_weekends() -> None:
    weekdays = daily("2025-02-03", "2025-03-12", lambda d: 100.0 if d.weekday() < 5 else 0.0)
    now = datetime(2025, 3, 12, tzinfo=UTC)  # a Wednesday
    out = forecast.outlook(weekdays, MARCH, APRIL, now, forecast.DAYS, limit=10_000)
    steps = out.forecast.diff().dropna()
    for end, amount in steps.items():
        day = end - pd.Timedelta(days=1)
        assert amount == pytest.approx(100.0 if day.weekday() < 5 else 0.0), day
    weekdays_left = sum(1 for d in pd.date_range("2025-03-12", "2025-03-31", tz="UTC") if d.weekday() < 5)
    assert out.spent == 100 * 7  # 3-7 and 10-11 March, weekdays only
    assert out.projected == pytest.approx(700 + 100 * weekdays_left)
    assert out.crossing is None


def test_a_budget_already_spent_says_when_it_ran_out() -> None:
    now = datetime(2025, 3, 20, tzinfo=UTC)
    out = forecast.outlook(daily("2025-02-01", "2025-03-20"), MARCH, APRIL, now, forecast.DAYS, limit=450)
    assert out.crossed
    assert out.crossing == datetime(2025, 3, 5, 12, tzinfo=UTC)


def test_a_new_subscription_uses_the_days_it_has() -> None:
    now = datetime(2025, 3, 10, tzinfo=UTC)
    out = forecast.outlook(
        daily("2025-03-08", "2025-03-10", lambda d: 60.0), MARCH, APRIL, now, forecast.DAYS
    )
    assert out.spent == 120
    assert out.projected == pytest.approx(120 + 22 * 60), "every weekday at the mean of the two days seen"


def test_with_no_complete_bin_the_pace_so_far_carries_on() -> None:
    now = datetime(2025, 3, 1, 6, tzinfo=UTC)  # a quarter of the first day
    series = pd.Series([25.0], index=[pd.Timestamp("2025-03-01", tz="UTC")])
    out = forecast.outlook(series, MARCH, APRIL, now, forecast.DAYS)
    assert out.projected == pytest.approx(100 * 31)


def test_hours_of_the_week_shape_a_daily_quota() -> None:
    """Busy 9-17 on weekdays, idle otherwise: a daily quota at 10:00 runs out in the afternoon."""
    hours = pd.date_range("2025-02-10", "2025-03-12 10:00", freq="h", inclusive="left", tz="UTC")
    busy = [100.0 if h.weekday() < 5 and 9 <= h.hour < 17 else 0.0 for h in hours]
    series = pd.Series(busy, index=hours)
    now = datetime(2025, 3, 12, 10, tzinfo=UTC)
    day_end = datetime(2025, 3, 13, tzinfo=UTC)
    out = forecast.outlook(series, datetime(2025, 3, 12, tzinfo=UTC), day_end, now, forecast.HOURS, limit=500)
    assert out.spent == 100  # 09:00-10:00
    assert out.crossing == datetime(2025, 3, 12, 14, tzinfo=UTC)
    assert out.projected == pytest.approx(800)


def test_minutes_carry_the_recent_pace_to_the_end_of_an_hourly_quota() -> None:
    minutes = pd.date_range("2025-03-12 09:30", "2025-03-12 10:20", freq="min", inclusive="left", tz="UTC")
    series = pd.Series(10.0, index=minutes)
    now = datetime(2025, 3, 12, 10, 20, tzinfo=UTC)
    out = forecast.outlook(
        series,
        datetime(2025, 3, 12, 10, tzinfo=UTC),
        datetime(2025, 3, 12, 11, tzinfo=UTC),
        now,
        forecast.MINUTES,
        500,
    )
    assert out.spent == 200
    assert out.crossing == now + timedelta(minutes=30)
    assert out.projected == pytest.approx(600)


def test_nothing_spent_and_no_history_forecasts_nothing() -> None:
    out = forecast.outlook(
        pd.Series(dtype=float), MARCH, APRIL, datetime(2025, 3, 5, tzinfo=UTC), forecast.DAYS, 1.0
    )
    assert out.spent == 0 and out.projected == 0 and out.crossing is None
