"""The one writer: the same text for times, numbers, booleans and nothing, in CSV and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from tokenboard import export


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 24, 13, 2, 3, tzinfo=UTC), "2026-11-24T13:02:03Z"),
        (datetime(2026, 11, 24, 13, 2, 3, 250_000, tzinfo=UTC), "2026-11-24T13:02:03.250Z"),
        (datetime(2026, 11, 24, 14, 2, 3, tzinfo=timezone(timedelta(hours=1))), "2026-11-24T13:02:03Z"),
        (datetime(2026, 11, 24, 13, 2, 3), "2026-11-24T13:02:03Z"),  # naive means UTC
    ],
)
def test_time_text_is_iso_utc_with_z_and_milliseconds_only_when_present(value: datetime, text: str) -> None:
    assert export.time_text(value) == text


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=59), "00:00:59"),
        (timedelta(hours=21, minutes=33), "21:33:00"),
        (timedelta(days=2, seconds=1), "2.00:00:01"),
        (timedelta(seconds=1, microseconds=500_000), "00:00:01.5000000"),
        (-timedelta(seconds=30), "-00:00:30"),
    ],
)
def test_timespan_text_is_the_dotnet_form(span: timedelta, text: str) -> None:
    assert export.timespan_text(span) == text


def test_csv_and_json_agree_on_every_value() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-11-24T13:02:03.5Z", None], utc=True),
            "tokens": [1200.0, float("nan")],
            "share": [0.125, 1.0],
            "calls": pd.array([3, None], dtype="Int64"),
            "ok": [True, False],
            "name": ["müller-ağ-東京", ""],
        }
    )
    lines = export.to_csv(frame).decode("utf-8").splitlines()
    assert lines == [
        "at,tokens,share,calls,ok,name",
        "2026-11-24T13:02:03.500Z,1200,0.125,3,true,müller-ağ-東京",
        ",,1,,false,",
    ]
    records = json.loads(export.to_json(frame))
    assert records == [
        {
            "at": "2026-11-24T13:02:03.500Z",
            "tokens": 1200,
            "share": 0.125,
            "calls": 3,
            "ok": True,
            "name": "müller-ağ-東京",
        },
        {"at": None, "tokens": None, "share": 1, "calls": None, "ok": False, "name": ""},
    ]


def test_json_text_is_compact_and_keeps_unicode() -> None:
    assert (
        export.json_text({"API ID": "chat", "Client Subscription": "müller"})
        == '{"API ID":"chat","Client Subscription":"müller"}'
    )


def test_the_probe_csv_uses_the_same_writer() -> None:
    from tokenboard.probe import ProbeResult, results_csv

    started = datetime(2026, 11, 24, 13, 2, 3, 250_000, tzinfo=UTC)
    results = [
        ProbeResult(0, started, 200, 12.34, remaining_tokens=40, total_tokens=10),
        ProbeResult(1, started, 429, 3.0, retry_after=60),
    ]
    rows = results_csv(results).decode().splitlines()
    assert rows[1].split(",")[:4] == ["0", "2026-11-24T13:02:03.250Z", "200", "12.3"]
    assert rows[2].split(",")[:7] == ["1", "2026-11-24T13:02:03.250Z", "429", "3", "", "", "60"]
