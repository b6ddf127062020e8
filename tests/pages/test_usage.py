"""Usage page: pivot cells and totals, stacked series, top consumers, drill-down, URL state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from pagetools import PAGES, between, csv_frame, download, metrics_with_dims
from streamlit.testing.v1 import AppTest

from tokenboard import demo
from tokenboard.store import Store

DAY = timedelta(hours=24)


def reference(demo_rows, demo_settings, demo_end) -> pd.DataFrame:
    return metrics_with_dims(between(demo_rows.metrics, demo_end - DAY, demo_end), demo_settings)


def shown(label: str) -> str:
    return label if label.strip() else "(none)"


def test_pivot_cells_and_totals_equal_pandas(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("usage")
    table = at.dataframe[0].value
    rows = reference(demo_rows, demo_settings, demo_end)
    total = rows[rows["name"] == "Total Tokens"]
    expected = total.pivot_table(
        index="subscription", columns="api", values="valueSum", aggfunc="sum", fill_value=0
    )
    for sub, by_api in expected.iterrows():
        for api, value in by_api.items():
            assert table.loc[shown(sub), api] == value, (sub, api)
    assert table.loc["Total", "Total"] == total["valueSum"].sum()
    by_api = total.groupby("api")["valueSum"].sum()
    assert table.loc["Total"].drop("Total").to_dict() == {shown(a): v for a, v in by_api.items()}
    sub_totals = total.groupby("subscription")["valueSum"].sum()
    assert [table.loc[shown(s), "Total"] for s in sub_totals.index] == list(sub_totals)
    assert list(table.index[:-1]) == [shown(s) for s in sub_totals.sort_values(ascending=False).index]


def test_pivot_axes_and_measure_come_from_the_url(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("usage", rows="API", cols="Model", measure="Prompt Tokens")
    table = at.dataframe[0].value
    rows = reference(demo_rows, demo_settings, demo_end)
    prompt = rows[rows["name"] == "Prompt Tokens"]
    expected = prompt.groupby(["api", "model"])["valueSum"].sum()
    for (api, model), value in expected.items():
        assert table.loc[api, shown(model)] == value
    assert table.index.name == "API"


def test_calls_measure_counts_each_call_once(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("usage", cols="(nothing)", measure="Calls")
    table = at.dataframe[0].value
    rows = reference(demo_rows, demo_settings, demo_end)
    calls = rows[rows["name"] == "Total Tokens"].groupby("subscription")["valueCount"].sum()
    for sub, value in calls.items():
        assert table.loc[shown(sub), "Calls"] == value


def test_unknown_metric_is_a_pivot_measure(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("usage", measure=demo.CACHED_METRIC)
    assert demo.CACHED_METRIC in at.selectbox(key="measure").options
    rows = reference(demo_rows, demo_settings, demo_end)
    assert (
        at.dataframe[0].value.loc["Total", "Total"]
        == rows.loc[rows["name"] == demo.CACHED_METRIC, "valueSum"].sum()
    )


def test_pivot_csv_is_the_table_shown(open_page, downloads):
    at = open_page("usage")
    table = at.dataframe[0].value
    csv = csv_frame(download(at, downloads, "usage_pivot.csv"))
    assert list(csv.columns) == ["Subscription", *table.columns]
    assert list(csv["Subscription"]) == list(table.index)
    assert [int(v) for v in csv["Total"]] == [round(v) for v in table["Total"]]


def test_heatmap_view_from_url(open_page):
    at = open_page("usage", view="Heatmap")
    assert not at.dataframe or all("Total" not in d.value.index for d in at.dataframe)
    assert len(at.get("plotly_chart")) == 5  # tokens, cost, heatmap, top consumers, ratio


def test_stacked_by_subscription_csv_adds_up_with_odd_names(
    open_page, downloads, demo_rows, demo_settings, demo_end
):
    at = open_page("usage", split="Subscription")
    csv = csv_frame(download(at, downloads, "tokens_over_time_by_subscription.csv"))
    assert list(csv.columns) == ["timestamp", "series", "tokens", "calls", "complete"]
    assert csv["timestamp"].str.endswith("Z").all()
    rows = reference(demo_rows, demo_settings, demo_end)
    assert csv["tokens"].astype(float).sum() == rows.loc[rows["name"] == "Total Tokens", "valueSum"].sum()
    series = set(csv["series"])
    assert "(none)" in series or "Other" in series
    assert series <= {shown(s) for s in rows["subscription"]} | {"Other"}


def test_by_metric_series_keep_unknown_metrics(open_page, downloads):
    at = open_page("usage")
    csv = csv_frame(download(at, downloads, "tokens_over_time_by_metric.csv"))
    assert {demo.CACHED_METRIC, demo.REASONING_METRIC, "Total Tokens"} <= set(csv["series"])


def test_top_consumers_with_share(open_page, downloads, demo_rows, demo_settings, demo_end):
    at = open_page("usage", top="5")
    csv = csv_frame(download(at, downloads, "top_consumers.csv"))
    rows = reference(demo_rows, demo_settings, demo_end)
    total = (
        rows[rows["name"] == "Total Tokens"]
        .groupby("subscription")["valueSum"]
        .sum()
        .sort_values(ascending=False)
    )
    assert list(csv["subscription"]) == [shown(s) for s in total.index[:5]]
    shares = (total / total.sum()).head(5)
    assert [round(float(s), 9) for s in csv["share"]] == [round(s, 9) for s in shares]


def test_drill_down_filters_the_page_and_can_be_undone(open_page, demo_rows, demo_settings, demo_end):
    sub = 'o\'brien "quoted" team'
    at = open_page("usage", sub=[sub])
    assert any("Drilled down to subscription" in i.value and "quoted" in i.value for i in at.info)
    table = at.dataframe[0].value
    rows = reference(demo_rows, demo_settings, demo_end)
    mine = rows[(rows["subscription"] == sub) & (rows["name"] == "Total Tokens")]
    assert list(table.index) == [sub, "Total"]
    assert table.loc["Total", "Total"] == mine["valueSum"].sum()
    next(b for b in at.button if b.label == "Show all subscriptions").click()
    at.run()
    assert not at.exception
    assert at.sidebar.multiselect(key="sub").value == []
    assert len(at.dataframe[0].value) > 3


def test_newest_bins_still_ingesting_are_marked_incomplete(app_env, monkeypatch, tmp_path, downloads):
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "timestamp": now - timedelta(minutes=m),
            "name": "Total Tokens",
            "valueSum": 100.0,
            "valueCount": 1,
            "customDimensions": {"Client Subscription": "live", "API ID": "chat"},
        }
        for m in range(1, 20)
    ]
    Store(tmp_path / "live").append("customMetrics", rows)
    monkeypatch.setenv("TOKENBOARD_DATA_DIR", str(tmp_path / "live"))
    at = AppTest.from_file(str(PAGES["usage"]), default_timeout=120)
    at.query_params["range"] = "1h"
    at.run()
    assert not at.exception
    csv = csv_frame(download(at, downloads, "tokens_over_time_by_metric.csv"))
    assert csv["complete"].iloc[0] == "true"
    assert csv["complete"].iloc[-1] == "false"  # within ingestion_delay_seconds of now
    assert list(csv["complete"]) == sorted(csv["complete"], key=lambda v: v == "false")
