"""The local-calendar reports through the Azure path: the real SDK against the emulator,
per UTC-offset piece, regrouped into the same local days and months as pandas finds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pandas as pd
import pytest
from la_emulator import LogAnalyticsEmulator

from tokenboard import reports
from tokenboard.backends.azure import AzureBackend
from tokenboard.backends.local import LocalBackend
from tokenboard.store import Store


@pytest.fixture
def emulator(calendar_store: Store, calendar_end: datetime) -> Iterator[LogAnalyticsEmulator]:
    """The emulator over the store that crosses New York's DST change (overrides conftest's)."""
    with LogAnalyticsEmulator(calendar_store, now=calendar_end) as emu:
        yield emu


@pytest.mark.parametrize(
    ("name", "period", "keys"),
    [("daily_usage", "day", ["subscription", "api"]), ("monthly_usage", "calendar_month", ["subscription"])],
)
@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata"])
def test_calendar_reports_on_azure_equal_pandas_and_local(
    azure_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    demo_settings,
    calendar_store: Store,
    calendar_end: datetime,
    local_usage,
    name: str,
    period: str,
    keys: list[str],
    tz: str,
) -> None:
    start = calendar_end - timedelta(days=3)
    params = {"start_time": start, "end_time": calendar_end, "time_zone": tz}
    remote = reports.build_report(name, azure_backend, params)
    local = reports.build_report(name, LocalBackend(demo_settings, calendar_store), params)
    pd.testing.assert_frame_equal(remote, local)
    want = local_usage(tz, start, calendar_end, "day" if period == "day" else "month", keys)
    got = remote.rename(columns={period: "period"}).set_index(["period", *keys])[want.columns].sort_index()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    pieces = 2 if tz == "America/New_York" else 1  # one query per UTC offset
    per_piece = 2 if name == "monthly_usage" else 1  # the month's tokens and its cost basis
    assert len(emulator.queries) == pieces * per_piece
