"""Overview page: headline numbers against pandas over the raw demo rows, errors, empty ranges."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from pagetools import (
    PAGES,
    between,
    csv_frame,
    download,
    metrics_with_dims,
    requests_with_dims,
    shown,
    whole,
)
from streamlit.testing.v1 import AppTest

from tokenboard import demo
from tokenboard.store import Store

DAY = timedelta(hours=24)


def metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def test_token_metrics_equal_pandas_sums_of_value_sum(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("overview")
    rows = between(demo_rows.metrics, demo_end - DAY, demo_end)
    before = between(demo_rows.metrics, demo_end - 2 * DAY, demo_end - DAY)
    for label, name in (
        ("Total tokens", "Total Tokens"),
        ("Prompt tokens", "Prompt Tokens"),
        ("Completion tokens", "Completion Tokens"),
    ):
        now = rows.loc[rows["name"] == name, "valueSum"].sum()
        prev = before.loc[before["name"] == name, "valueSum"].sum()
        shown = metric(at, label)
        assert shown.value == whole(now)
        assert shown.delta == f"{(now - prev) / prev:+.1%}"
    calls = rows.loc[rows["name"] == "Total Tokens", "valueCount"].sum()
    assert metric(at, "Calls").value == f"{calls:,}"


def test_limit_hit_rate_counts_429_and_403_weighted_by_item_count(open_page, demo_rows, demo_end):
    at = open_page("overview")
    rows = between(demo_rows.requests, demo_end - DAY, demo_end)
    hits = rows.loc[rows["resultCode"].isin(["429", "403"]), "itemCount"].sum()
    assert hits > 0
    assert metric(at, "Limit-hit rate").value == f"{hits / rows['itemCount'].sum() * 100:.1f}%"
    assert metric(at, "Requests").value == f"{rows['itemCount'].sum():,}"


def test_busiest_subscription_and_api_are_the_largest_total_tokens(
    open_page, demo_rows, demo_settings, demo_end
):
    at = open_page("overview")
    rows = metrics_with_dims(between(demo_rows.metrics, demo_end - DAY, demo_end), demo_settings)
    total = rows[rows["name"] == "Total Tokens"]
    assert (
        metric(at, "Busiest subscription").value == total.groupby("subscription")["valueSum"].sum().idxmax()
    )
    assert metric(at, "Busiest API").value == total.groupby("api")["valueSum"].sum().idxmax()


def test_unknown_metric_names_are_shown_but_not_added_to_total(open_page, demo_rows, demo_end):
    at = open_page("overview")
    rows = between(demo_rows.metrics, demo_end - DAY, demo_end)
    cached = rows.loc[rows["name"] == demo.CACHED_METRIC, "valueSum"].sum()
    assert cached > 0
    assert any(f"{demo.CACHED_METRIC} {whole(cached)}" in c.value for c in at.caption)
    total = rows.loc[rows["name"] == "Total Tokens", "valueSum"].sum()
    assert metric(at, "Total tokens").value == whole(total)  # not total + cached


def test_headline_csv_holds_the_numbers_shown(open_page, downloads, demo_rows, demo_end):
    at = open_page("overview")
    table = csv_frame(download(at, downloads, "headline_numbers.csv")).set_index("measure")
    rows = between(demo_rows.metrics, demo_end - DAY, demo_end)
    assert table.loc["total_tokens", "current"] == str(
        round(rows.loc[rows["name"] == "Total Tokens", "valueSum"].sum())
    )
    assert whole(int(table.loc["prompt_tokens", "current"])) == metric(at, "Prompt tokens").value
    assert demo.CACHED_METRIC in table.index


def test_subscription_filter_in_url_narrows_every_number(open_page, demo_rows, demo_settings, demo_end):
    sub = "müller-ağ-東京"
    at = open_page("overview", sub=[sub])
    assert at.sidebar.multiselect[0].value == [sub]
    rows = metrics_with_dims(between(demo_rows.metrics, demo_end - DAY, demo_end), demo_settings)
    mine = rows[(rows["subscription"] == sub) & (rows["name"] == "Total Tokens")]
    assert metric(at, "Total tokens").value == whole(mine["valueSum"].sum())
    requests = requests_with_dims(between(demo_rows.requests, demo_end - DAY, demo_end), demo_settings)
    assert (
        metric(at, "Requests").value
        == f"{requests.loc[requests['subscription'] == sub, 'itemCount'].sum():,}"
    )


def test_url_range_and_zone_restore_the_view(open_page, demo_rows, demo_end):
    at = open_page("overview", range="7d", tz="Asia/Tokyo")
    assert at.sidebar.selectbox(key="tz").value == "Asia/Tokyo"
    rows = between(demo_rows.metrics, demo_end - timedelta(days=7), demo_end)
    assert metric(at, "Total tokens").value == whole(
        rows.loc[rows["name"] == "Total Tokens", "valueSum"].sum()
    )
    assert any("(Asia/Tokyo)" in c.value and "23:07" in c.value for c in at.caption)


def test_empty_range_says_so_plainly(open_page):
    at = open_page("overview", end="2020-01-01T00:00:00Z")
    assert not at.metric
    assert any("No token usage between" in i.value for i in at.info)


def test_data_source_is_named(open_page, demo_settings):
    at = open_page("overview")
    assert any(f"local demo store in {demo_settings.store.data_dir}" in m.value for m in at.markdown)
    assert any("previous 24 h" in c.value for c in at.caption)


def test_an_unreadable_segment_is_one_warning_not_an_error(app_env, monkeypatch, tmp_path, demo_end):
    data_dir = tmp_path / "broken"
    Store(data_dir).append(
        "customMetrics", [{"timestamp": demo_end.replace(tzinfo=None), "name": "Total Tokens"}]
    )
    segment = Store(data_dir).segment_paths("customMetrics")[0]
    segment.write_bytes(b"this is not parquet")
    monkeypatch.setenv("TOKENBOARD_DATA_DIR", str(data_dir))
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    # Set aside to quarantine/, named with the rows it held; the page runs on the rest.
    [warning] = [w.value for w in at.warning if "could not be read" in w.value]
    assert f"quarantine/{segment.name}" in warning and "1 row is left out of every query" in warning
    assert "Traceback" not in warning and "SELECT" not in warning


def test_corrupt_manifest_is_worded_not_a_traceback(app_env, monkeypatch, tmp_path):
    data_dir = tmp_path / "bad-manifest"
    (data_dir / "customMetrics").mkdir(parents=True)
    (data_dir / "customMetrics" / "manifest.json").write_text("{not json")
    monkeypatch.setenv("TOKENBOARD_DATA_DIR", str(data_dir))
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120).run()
    assert not at.exception
    assert [e.value for e in at.error] and "local data store cannot be read" in at.error[0].value


def test_bad_setting_names_the_key(app_env, monkeypatch):
    monkeypatch.setenv("TOKENBOARD_TOKENS_PER_MINUTE", "lots")
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120).run()
    assert not at.exception
    assert len(at.error) == 1 and "'tokens_per_minute' must be a whole number" in shown(at.error[0].value)


def test_settings_from_secrets_are_used(app_env, monkeypatch, demo_settings, demo_end):
    monkeypatch.delenv("TOKENBOARD_DATA_DIR")
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120)
    at.secrets["data_dir"] = str(demo_settings.store.data_dir)
    at.query_params["end"] = demo_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    at.run()
    assert not at.exception and not at.error
    assert metric(at, "Total tokens").value != "0"


@pytest.mark.parametrize("code", ["429", "403"])
def test_raw_rows_hold_both_codes(demo_rows, code):
    """Guard: the demo data must contain what the rate tests count, or they prove nothing."""
    assert (demo_rows.requests["resultCode"] == code).any()


def test_dimension_json_has_odd_values(demo_rows, demo_settings):
    subs = {
        json.loads(t).get(demo_settings.telemetry.subscription_dimension, "")
        for t in demo_rows.metrics["customDimensions"]
    }
    assert "" in subs and any(not s.isascii() for s in subs)
    assert isinstance(pd.Timestamp(demo_rows.metrics["timestamp"].iloc[0]).tz, object)


def test_custom_range_from_the_url_is_read_in_the_display_zone(open_page, demo_rows):
    at = open_page(
        "overview",
        range="custom",
        tz="Europe/Berlin",
        **{"from": "2025-03-01T00:00", "to": "2025-03-02T00:00"},
    )
    start, end = pd.Timestamp("2025-02-28T23:00Z"), pd.Timestamp("2025-03-01T23:00Z")  # Berlin is UTC+1
    rows = between(demo_rows.metrics, start, end)
    assert metric(at, "Total tokens").value == whole(
        rows.loc[rows["name"] == "Total Tokens", "valueSum"].sum()
    )
    assert any("2025-03-01 00:00 → 2025-03-02 00:00 (Europe/Berlin)" in c.value for c in at.caption)


def test_no_change_against_a_previous_period_with_little_data(open_page, demo_end):
    # The demo's data begins 72 h before its end; 24 h ending 36 h before the end compare with a
    # previous 24 h of which only the last 12 h hold data.
    end = demo_end - timedelta(hours=36)
    at = open_page("overview", end=f"{end:%Y-%m-%dT%H:%M:%SZ}")
    for label in ("Total tokens", "Calls", "Limit-hit rate"):
        shown = metric(at, label)
        assert not shown.delta, label
        assert "previous period: data for 12 h of 24 h" in shown.help, label
