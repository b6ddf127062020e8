"""The pure view functions: ranges, bins, the ingesting edge, labels, pivots, clicks, CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tokenboard.config import Settings
from tokenboard.export import to_csv
from tokenboard.views import timerange as tr
from tokenboard.views import usage
from tokenboard.views.labels import label, labelled, unlabel

END = datetime(2025, 3, 3, 14, 7, tzinfo=UTC)


def test_previous_period_has_the_same_length_and_touches():
    now = tr.preset_range("7d", END)
    assert now.previous() == tr.TimeRange(END - timedelta(days=14), END - timedelta(days=7))


def test_live_end_is_the_next_whole_minute():
    assert tr.live_end(datetime(2025, 1, 1, 10, 0, 1, tzinfo=UTC)) == datetime(2025, 1, 1, 10, 1, tzinfo=UTC)
    assert tr.live_end(datetime(2025, 1, 1, 10, 0, tzinfo=UTC)) == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)


def test_too_fine_granularity_falls_back_to_auto():
    month = tr.preset_range("30d", END)
    assert tr.bin_size(month, "1m") == timedelta(hours=6)
    assert tr.bin_size(tr.preset_range("24h", END), "5m") == timedelta(minutes=5)
    assert tr.bin_size(tr.preset_range("24h", END), "auto") == timedelta(minutes=15)


def test_url_instants_parse_in_utc_or_the_display_zone():
    assert tr.parse_instant("2025-03-03T14:07:00Z") == END
    assert tr.parse_instant("2025-03-03T23:07", "Asia/Tokyo") == END
    assert tr.parse_instant("2025-03-03T14:07:00 00:00") == END  # "+" decoded as a space
    assert tr.parse_instant("yesterday") is None


def test_bins_after_the_ingestion_delay_are_incomplete():
    time_range = tr.TimeRange(END - timedelta(hours=1), END)
    now = END - timedelta(seconds=30)
    start = tr.first_incomplete_bin(time_range, timedelta(minutes=5), now, ingestion_delay_seconds=180)
    assert start == datetime(2025, 3, 3, 14, 0, tzinfo=UTC)  # 14:03:30 falls in the 14:00 bin
    aligned = tr.TimeRange(END - timedelta(hours=1, minutes=7), END - timedelta(minutes=7))
    assert tr.first_incomplete_bin(aligned, timedelta(minutes=5), END + timedelta(hours=1), 180) is None


def test_a_bin_cut_by_the_range_end_is_incomplete():
    time_range = tr.TimeRange(END - timedelta(hours=24), END)  # ends at 14:07, inside the 14:00 bin
    later = END + timedelta(days=1)
    assert tr.first_incomplete_bin(time_range, timedelta(minutes=15), later, 180) == datetime(
        2025, 3, 3, 14, 0, tzinfo=UTC
    )


def test_incomplete_bins_are_flagged_in_the_chart_data():
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2025-03-03T13:55Z", "2025-03-03T14:00Z", "2025-03-03T14:05Z"], utc=True
            ),
            "series": ["Total Tokens"] * 3,
            "tokens": [1.0, 2.0, 3.0],
            "calls": [1, 1, 1],
        }
    )
    chart = usage.tokens_over_time(
        frame, "metric", Settings(), "UTC", datetime(2025, 3, 3, 14, 0, tzinfo=UTC), END
    )
    assert list(chart.data["complete"]) == [True, False, False]
    assert any(shape.x0 is not None for shape in chart.figure.layout.shapes)


def test_empty_and_unicode_dimension_values_display():
    assert label("") == "(none)" and label(None) == "(none)" and label("  ") == "(none)"
    assert label("müller-ağ-東京") == "müller-ağ-東京"
    assert unlabel("(none)") == "" and unlabel("x") == "x"
    frame = labelled(pd.DataFrame({"subscription": ["", "東京"], "tokens": [1.0, 2.0]}))
    assert list(frame["subscription"]) == ["(none)", "東京"]


def test_by_metric_stacks_prompt_and_completion_but_not_unknown_categories():
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2025-03-03T13:00Z"] * 4, utc=True),
            "series": ["Total Tokens", "Prompt Tokens", "Completion Tokens", "Prompt Cached Tokens"],
            "tokens": [10.0, 7.0, 3.0, 5.0],
            "calls": [1, 1, 1, 1],
        }
    )
    figure = usage.tokens_over_time(frame, "metric", Settings()).figure
    stacked = {t.name for t in figure.data if t.stackgroup}
    assert stacked == {"Prompt Tokens", "Completion Tokens"}
    assert "Prompt Cached Tokens (not in total)" in {t.name for t in figure.data}


def test_pivot_totals_and_heatmap_leave_totals_out():
    frame = pd.DataFrame(
        {
            "subscription": ["a", "a", "", "b"],
            "api": ["chat", "resp", "chat", "chat"],
            "model": ["m"] * 4,
            "metric": ["Total Tokens"] * 4,
            "tokens": [1.0, 2.0, 4.0, 8.0],
            "calls": [1, 1, 1, 1],
        }
    )
    table = usage.pivot(frame, "subscription", "api", "Total Tokens", Settings())
    assert table.loc["Total", "Total"] == 15.0
    assert table.loc["(none)", "chat"] == 4.0 and table.loc["a", "Total"] == 3.0
    assert list(table.index) == ["b", "(none)", "a", "Total"]
    heat = usage.heatmap(table, "Total Tokens")
    assert "Total" not in list(heat.data[0].y) and "Total" not in list(heat.data[0].x)


def test_a_click_on_a_bar_picks_its_subscription():
    data = pd.DataFrame({"subscription": ["x", "(none)"]})
    event = {"selection": {"points": [{"point_index": 1, "y": "(none)"}]}}
    assert usage.selected_subscription(event, data) == "(none)"
    assert usage.selected_subscription({"selection": {"points": []}}, data) is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1.0, 2.5], ["1", "2.5"]), ([float("nan")], [""]), ([12345678.0], ["12345678"])],
)
def test_csv_numbers_are_plain(values, expected):
    text = to_csv(pd.DataFrame({"k": ["x"] * len(values), "n": values})).decode().splitlines()
    assert text[1:] == [f"x,{e}" for e in expected]


def test_csv_is_utf8_with_iso_utc_timestamps():
    frame = pd.DataFrame(
        {
            "t": pd.to_datetime(["2025-03-03T15:07:00+01:00", None], utc=True),
            "who": ["müller-ağ-東京", 'o\'brien "quoted"'],
            "ok": [True, False],
        }
    )
    content = to_csv(frame)
    lines = content.decode("utf-8").splitlines()
    assert lines[0] == "t,who,ok"
    assert lines[1] == "2025-03-03T14:07:00Z,müller-ağ-東京,true"
    assert lines[2] == ',"o\'brien ""quoted""",false'
    millis = to_csv(pd.DataFrame({"t": pd.to_datetime(["2025-03-03T14:07:00.250Z"], utc=True)}))
    assert millis.decode().splitlines()[1] == "2025-03-03T14:07:00.250Z"
