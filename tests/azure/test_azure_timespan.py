"""The query's range goes to the service as ``timespan``, which limits every table even
where the KQL has no ``where`` of its own (the emulator does what the service does)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from la_emulator import LogAnalyticsEmulator, parse_timespan

from tokenboard import kql
from tokenboard.backends.azure import AzureBackend

COUNT_ALL = "customMetrics | summarize n = count(), oldest = min(timestamp), newest = max(timestamp)\n"


def _pandas_count(frame: pd.DataFrame, start: datetime, end: datetime) -> int:
    return int(frame["timestamp"].between(pd.Timestamp(start), pd.Timestamp(end)).sum())


def test_timespan_limits_a_query_without_where(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, demo_rows, demo_end: datetime
) -> None:
    start, end = demo_end - timedelta(hours=2), demo_end - timedelta(hours=1)
    bound = kql.BoundQuery(name="count_all", body=COUNT_ALL, values={"start_time": start, "end_time": end})

    frame = azure_backend.run_query(bound).frame

    assert emulator.queries[-1].timespan == "2025-03-03T12:07:00.000Z/2025-03-03T13:07:00.000Z"
    expected = _pandas_count(demo_rows.metrics, start, end)
    assert 0 < expected < len(demo_rows.metrics)
    assert frame["n"].tolist() == [expected]
    assert frame["oldest"][0] >= start and frame["newest"][0] <= end


def test_query_without_a_range_sends_no_timespan(
    azure_backend: AzureBackend, emulator: LogAnalyticsEmulator, demo_rows
) -> None:
    bound = kql.BoundQuery(name="count_all", body=COUNT_ALL, values={})
    frame = azure_backend.run_query(bound).frame
    assert emulator.queries[-1].timespan is None
    assert frame["n"].tolist() == [len(demo_rows.metrics)]


def test_timespan_limits_workspace_tables_too(
    workspace_backend: AzureBackend, demo_rows, demo_end: datetime
) -> None:
    start, end = demo_end - timedelta(minutes=90), demo_end
    text = "AppRequests | summarize n = count()\n"
    bound = kql.BoundQuery(name="count_requests", body=text, values={"start_time": start, "end_time": end})
    frame = workspace_backend.run_query(bound).frame
    assert frame["n"].tolist() == [_pandas_count(demo_rows.requests, start, end)]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2025-03-01T00:00:00.000Z/2025-03-02T00:00:00.000Z", datetime(2025, 3, 1), datetime(2025, 3, 2)),
        ("2025-03-01T00:00:00Z/PT3600.0S", datetime(2025, 3, 1), datetime(2025, 3, 1, 1)),
        ("PT3600.0S", datetime(2025, 3, 3, 13, 7), datetime(2025, 3, 3, 14, 7)),
        ("P1DT30M", datetime(2025, 3, 2, 13, 37), datetime(2025, 3, 3, 14, 7)),
    ],
)
def test_emulator_reads_the_timespan_forms_the_sdk_sends(text: str, start: datetime, end: datetime) -> None:
    assert parse_timespan(text, now=datetime(2025, 3, 3, 14, 7, tzinfo=UTC)) == (start, end)


@pytest.mark.parametrize("text", ["yesterday", "P", "2025-03-02/2025-03-01", "PT1H/2025-03-01"])
def test_emulator_rejects_timespans_the_service_would(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)
