"""daily_usage and monthly_usage cut days and months on the calendar of their time zone.

Checked against pandas grouping the raw rows by their tz-aware local date, across the end of
summer time in New York (a 25-hour day) and a month boundary, and in Asia/Kolkata (UTC+5:30).
The same reports through the Azure path: tests/azure/test_azure_calendar.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from tokenboard import kql, reports
from tokenboard.backends.local import LocalBackend

ROOT = Path(__file__).resolve().parent.parent
ZONES = ("America/New_York", "Asia/Kolkata", "UTC")


@pytest.fixture(scope="module")
def calendar_backend(demo_settings, calendar_store) -> LocalBackend:
    return LocalBackend(demo_settings, calendar_store)


def as_reference(table: pd.DataFrame, period: str, keys: list[str]) -> pd.DataFrame:
    out = table.rename(columns={period: "period"}).set_index(["period", *keys])
    return out[["total_tokens", "prompt_tokens", "completion_tokens", "calls"]].sort_index()


@pytest.mark.parametrize("tz", ZONES)
def test_daily_usage_groups_by_local_date(calendar_backend, local_usage, calendar_end, tz):
    start = calendar_end - timedelta(days=2, hours=8)  # 1 November 04:00 UTC: midnight in New York
    params = {"start_time": start, "end_time": calendar_end, "time_zone": tz}
    table = reports.build_report("daily_usage", calendar_backend, params)
    documented = [c for c, _ in reports.DAILY_USAGE_COLUMNS]
    assert list(table.columns[: len(documented)]) == documented
    assert (table["time_zone"] == tz).all()
    want = local_usage(tz, start, calendar_end, "day", ["subscription", "api"])
    assert len(want) > 30
    pd.testing.assert_frame_equal(
        as_reference(table, "day", ["subscription", "api"]), want, check_dtype=False
    )
    if tz == "America/New_York":
        assert set(table["day"]) == {"2025-11-01", "2025-11-02", "2025-11-03"}  # 2 Nov has 25 hours


@pytest.mark.parametrize("tz", ZONES)
def test_monthly_usage_groups_by_local_month(calendar_backend, local_usage, calendar_end, tz):
    start = calendar_end - timedelta(days=3)
    params = {"start_time": start, "end_time": calendar_end, "time_zone": tz}
    table = reports.build_report("monthly_usage", calendar_backend, params)
    documented = [c for c, _ in reports.MONTHLY_USAGE_COLUMNS]
    assert list(table.columns[: len(documented)]) == documented
    want = local_usage(tz, start, calendar_end, "month", ["subscription"])
    assert set(want.index.get_level_values(0)) == {"2025-10", "2025-11"}
    got = as_reference(table, "calendar_month", ["subscription"])
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # month: the first instant of the local month; period_*: the month clipped to the range.
    november = table[table["calendar_month"] == "2025-11"]
    first = pd.Timestamp("2025-11-01").tz_localize(tz).tz_convert("UTC")
    assert (november["month"] == first).all() and (november["period_start"] == first).all()
    assert (november["period_end"] == pd.Timestamp(calendar_end)).all()
    october = table[table["calendar_month"] == "2025-10"]
    assert (october["period_start"] == pd.Timestamp(start)).all()
    assert (october["period_end"] == first).all()


def test_time_zone_defaults_to_utc_and_must_be_known(calendar_backend, calendar_end):
    window = {"start_time": calendar_end - timedelta(days=2), "end_time": calendar_end}
    table = reports.build_report("daily_usage", calendar_backend, window)
    assert set(table["time_zone"]) == {"UTC"}
    with pytest.raises(kql.QueryError, match="unknown time zone 'Mars/Base'"):
        reports.build_report("daily_usage", calendar_backend, {**window, "time_zone": "Mars/Base"})
    with pytest.raises(kql.QueryError, match="has no parameter 'time_zone'"):
        reports.build_report("usage_pivot", calendar_backend, {**window, "time_zone": "UTC"})


def test_a_range_across_dst_is_one_query_per_utc_offset(calendar_backend, calendar_end):
    params = {"start_time": calendar_end - timedelta(days=3), "end_time": calendar_end}
    new_york = reports.bind_report(
        reports.REPORTS["daily_usage"], calendar_backend, {**params, "time_zone": "America/New_York"}
    )
    assert [b.values["bin_phase"] for b in new_york.queries] == [timedelta(hours=4), timedelta(hours=5)]
    kolkata = reports.bind_report(
        reports.REPORTS["daily_usage"], calendar_backend, {**params, "time_zone": "Asia/Kolkata"}
    )
    assert [b.values["bin_phase"] for b in kolkata.queries] == [timedelta(hours=18, minutes=30)]


def test_cli_report_takes_a_time_zone(calendar_store, calendar_end, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOARD_")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path))
    start = calendar_end - timedelta(days=2)

    args = ["report", "daily_usage", "--data-dir", str(calendar_store.data_dir)]
    args += ["--param", f"start_time={start:%Y-%m-%dT%H:%M:%SZ}"]
    args += ["--param", f"end_time={calendar_end:%Y-%m-%dT%H:%M:%SZ}", "--param", "time_zone=Asia/Kolkata"]
    command = [sys.executable, "-m", "tokenboard", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.splitlines()[0].startswith("day,subscription,api,total_tokens,")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert set(frame["day"]) == {"2025-11-01", "2025-11-02", "2025-11-03"}
    assert not frame["total_tokens"].str.contains(r"\.").any()  # whole numbers without .0
