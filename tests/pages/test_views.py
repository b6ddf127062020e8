"""The pure view functions: ranges, bins, the ingesting edge, labels, pivots, clicks, CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tokenboard import localtime
from tokenboard.config import Settings
from tokenboard.export import to_csv
from tokenboard.views import formats, links, overview, usage
from tokenboard.views import timerange as tr
from tokenboard.views.chart import Axis
from tokenboard.views.labels import label, labelled, unlabel
from tokenboard.views.overview import Coverage, UsageTotals

END = datetime(2025, 3, 3, 14, 7, tzinfo=UTC)


def test_previous_period_has_the_same_length_and_touches():
    now = tr.preset_range("7d", END)
    assert now.previous() == tr.TimeRange(END - timedelta(days=14), END - timedelta(days=7))


def test_live_end_is_the_next_whole_minute():
    assert tr.live_end(datetime(2025, 1, 1, 10, 0, 1, tzinfo=UTC)) == datetime(2025, 1, 1, 10, 1, tzinfo=UTC)
    assert tr.live_end(datetime(2025, 1, 1, 10, 0, tzinfo=UTC)) == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)


def test_live_end_steps_on_refresh_seconds_so_a_window_shares_one_range():
    five = 300
    opened = [datetime(2025, 1, 1, 10, 0, 1, tzinfo=UTC), datetime(2025, 1, 1, 10, 4, 59, tzinfo=UTC)]
    assert {tr.live_end(t, five) for t in opened} == {datetime(2025, 1, 1, 10, 5, tzinfo=UTC)}
    assert tr.live_end(datetime(2025, 1, 1, 10, 5, 0, 1, tzinfo=UTC), five) == datetime(
        2025, 1, 1, 10, 10, tzinfo=UTC
    )
    assert tr.live_end(datetime(2025, 1, 1, 23, 0, tzinfo=UTC), 86400) == datetime(2025, 1, 2, tzinfo=UTC)


def test_too_fine_granularity_falls_back_to_auto():
    month = tr.preset_range("30d", END)
    assert tr.bin_unit(month, "1m") == "6h"
    assert tr.bin_unit(tr.preset_range("24h", END), "5m") == "5m"
    assert tr.bin_unit(tr.preset_range("24h", END), "auto") == "15m"
    assert tr.bin_unit(month, "1mo") == "1mo"
    years = tr.TimeRange(datetime(2001, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC))
    assert tr.bin_unit(years, "1d") == "1mo"  # weeks would still be too many


def test_url_instants_parse_in_utc_or_the_display_zone():
    assert tr.parse_instant("2025-03-03T14:07:00Z") == END
    assert tr.parse_instant("2025-03-03T23:07", "Asia/Tokyo") == END
    assert tr.parse_instant("2025-03-03T14:07:00 00:00") == END  # "+" decoded as a space
    assert tr.parse_instant("yesterday") is None


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1999-12-31", "2025-02-30", "2025-03-03T25:00", "\x00"],
)
def test_out_of_range_or_impossible_instants_are_none(text):
    assert tr.parse_instant(text) is None


def test_incomplete_bins_are_flagged_in_the_chart_data():
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2025-03-03T13:55Z", "2025-03-03T14:05Z"], utc=True),
            "series": ["Total Tokens"] * 2,
            "tokens": [1.0, 3.0],
            "calls": [1, 1],
        }
    )
    bins = localtime.plan(END - timedelta(minutes=18), END, "UTC", "5m")  # 13:49 .. 14:07
    axis = Axis(bins, bins.incomplete_from(END + timedelta(minutes=1), 180))
    chart = usage.tokens_over_time(frame, "metric", Settings(), axis)
    # 13:45 is cut by the range start, 14:00 has no data (a zero, not a gap), 14:05 is ingesting.
    times = ["13:45", "13:50", "13:55", "14:00", "14:05"]
    assert list(chart.data["timestamp"].dt.strftime("%H:%M")) == times
    assert list(chart.data["tokens"]) == [0.0, 0.0, 1.0, 0.0, 3.0]
    assert list(chart.data["complete"]) == [False, True, True, True, False]
    assert len([s for s in chart.figure.layout.shapes if s.x0 is not None]) == 2  # both ends shaded


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


def test_one_number_format():
    assert formats.whole(9954) == "9,954" and formats.whole(14935.0) == "14,935"
    assert formats.percent(0.1234) == "12.3%" and formats.percent(0.0) == "0.0%"
    assert formats.percent(0.0002) == "<0.1%"  # not zero, too small for one decimal
    assert formats.change(110, 100) == "+10.0%" and formats.change(5, 0) is None
    assert formats.points(0.125, 0.1) == "+2.5 pp" and formats.points(0.1, 0.1) is None
    assert formats.length(timedelta(hours=2)) == "2 h" and formats.length(timedelta(days=30)) == "30 d"
    assert formats.length(timedelta(minutes=5)) == "5 min"


def test_a_change_needs_a_previous_period_covered_by_data():
    period = tr.TimeRange(END - timedelta(days=60), END - timedelta(days=30))
    few_hours = pd.DataFrame({"metrics_first": [pd.Timestamp(period.end - timedelta(hours=2))]})
    coverage = Coverage.of(few_hours, "metrics_first", period)
    assert not coverage.enough and coverage.change(489_650.6, 1) is None
    assert coverage.note() == "previous period: data for 2 h of 30 d"
    assert coverage.help("Previous 30 d: 1").startswith(
        "No change shown: previous period: data for 2 h of 30 d."
    )
    before = pd.DataFrame({"metrics_first": [pd.Timestamp(period.start - timedelta(days=3))]})
    assert Coverage.of(before, "metrics_first", period).change(110, 100) == "+10.0%"
    nothing = pd.DataFrame({"metrics_first": [pd.NaT]})
    assert Coverage.of(nothing, "metrics_first", period).note() == "previous period: no data"
    headlines = overview.usage_headlines(
        UsageTotals(2000.0, 1500.0, 500.0, 10, {}), UsageTotals(1.0, 1.0, 0.0, 1, {}), "30 d", coverage
    )
    assert [h.delta for h in headlines] == [None] * 4
    assert all("data for 2 h of 30 d" in h.help for h in headlines)


def test_link_values_that_cannot_be_taken_are_named():
    rules = {
        "range": links.one_of(["1h", "24h"]),
        "top": links.whole_between(3, 30),
        "sub": links.anything(many=True),
    }
    params = {
        "range": ["zzz"],
        "top": ["99"],
        "sub": ["coho-winery", "x"],
        "utm": ["mail"],
        "embed": ["true"],
    }
    assert links.ignored(params, rules) == ["range=zzz", "top=99 (not 3-30)", "utm=mail"]
    assert links.notice(["range=zzz", "tz=Mars/Base"]) == "Ignored from the link: range=zzz, tz=Mars/Base."
    assert links.notice([]) is None
    assert links.ignored({"range": ["1h", "24h"]}, rules) == ["range=1h"]  # one value: the last wins
