"""Throttling page: 429 and 403 rates, worst subscriptions, headroom against configured limits."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from pagetools import between, csv_frame, download, metrics_with_dims, requests_with_dims

from tokenboard import demo

DAY = timedelta(hours=24)


def requests_in_range(demo_rows, demo_settings, demo_end) -> pd.DataFrame:
    return requests_with_dims(between(demo_rows.requests, demo_end - DAY, demo_end), demo_settings)


def metric(at, label):
    return next(m for m in at.metric if m.label == label)


def test_429_and_403_rates_equal_pandas(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("throttling", range="7d")
    rows = requests_with_dims(
        between(demo_rows.requests, demo_end - timedelta(days=7), demo_end), demo_settings
    )
    n = rows["itemCount"].sum()
    for label, code in (("429 rate limited", "429"), ("403 quota exceeded", "403")):
        hits = rows.loc[rows["resultCode"] == code, "itemCount"].sum()
        assert hits > 0, code
        assert metric(at, label).value == f"{hits / n:.2%}"


def test_rates_over_time_csv_separates_429_and_403(open_page, downloads, demo_rows, demo_settings, demo_end):
    at = open_page("throttling")
    csv = csv_frame(download(at, downloads, "limit_hit_rate_over_time.csv"))
    rows = requests_in_range(demo_rows, demo_settings, demo_end)
    assert csv["rate_limited"].astype(int).sum() == rows.loc[rows["resultCode"] == "429", "itemCount"].sum()
    assert csv["quota_exceeded"].astype(int).sum() == rows.loc[rows["resultCode"] == "403", "itemCount"].sum()
    assert csv["requests"].astype(int).sum() == rows["itemCount"].sum()
    # The demo ended long ago, so only the last bin (cut at 14:07) is incomplete.
    assert list(csv["complete"]) == ["true"] * (len(csv) - 1) + ["false"]


def test_worst_subscriptions_with_first_and_last_hit(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("throttling")
    worst = at.dataframe[0].value
    rows = requests_in_range(demo_rows, demo_settings, demo_end)
    hits = rows[rows["resultCode"].isin(["429", "403"])]
    by_sub = hits.groupby("subscription")["itemCount"].sum().sort_values(ascending=False)
    top = worst.iloc[0]
    assert top["subscription"] == by_sub.index[0] and top["hits"] == by_sub.iloc[0]
    first = hits.loc[hits["subscription"] == by_sub.index[0], "timestamp"].min()
    assert pd.Timestamp(top["first_hit"]) == first.tz_convert("UTC").tz_localize(None)


def test_quota_tenant_shows_403s(open_page, downloads, demo_rows, demo_settings, demo_end):
    at = open_page("throttling", range="7d", by="Subscription")
    csv = csv_frame(download(at, downloads, "limit_hits_by_subscription.csv")).set_index("subscription")
    assert int(csv.loc[demo.QUOTA_TENANT, "quota_exceeded"]) > 0


def test_headroom_uses_each_subscriptions_configured_limit(
    open_page, monkeypatch, downloads, demo_rows, demo_settings, demo_end
):
    monkeypatch.setenv("TOKENBOARD_TOKENS_PER_MINUTE_OVERRIDES", "contoso-prod=1000")
    at = open_page("throttling")
    csv = csv_frame(download(at, downloads, "headroom.csv")).set_index("subscription")
    rows = metrics_with_dims(between(demo_rows.metrics, demo_end - DAY, demo_end), demo_settings)
    total = rows[rows["name"] == "Total Tokens"]
    per_minute = total.groupby(["subscription", total["timestamp"].dt.floor("1min")])["valueSum"].sum()
    peak = per_minute.loc["contoso-prod"].max()
    assert float(csv.loc["contoso-prod", "peak_tokens"]) == peak
    assert int(csv.loc["contoso-prod", "limit"]) == 1000
    assert int(csv.loc["fabrikam-prod", "limit"]) == demo_settings.limits.tokens_per_minute
    assert float(csv.loc["contoso-prod", "peak_share_of_limit"]) == peak / 1000
    assert csv.index[0] == "contoso-prod"  # the tightest limit comes first


def test_headroom_over_time_draws_the_limit_line(open_page, downloads):
    at = open_page("throttling", headroom="fabrikam-prod")
    csv = csv_frame(download(at, downloads, "peak_tokens_over_time.csv"))
    assert set(csv["subscription"]) == {"fabrikam-prod"}
    assert set(csv["limit"]) == {"10000"}


def test_throttled_minutes_joined_with_tokens(open_page, downloads, demo_rows, demo_settings, demo_end):
    at = open_page("throttling")
    csv = csv_frame(download(at, downloads, "throttled_minutes.csv"))
    rows = requests_in_range(demo_rows, demo_settings, demo_end)
    hits = rows[rows["resultCode"].isin(["429", "403"])]
    minutes = hits.groupby(["subscription", hits["timestamp"].dt.floor("1min")]).size()
    assert len(csv) == min(len(minutes), 2000)
    metrics = metrics_with_dims(between(demo_rows.metrics, demo_end - DAY, demo_end), demo_settings)
    total = metrics[metrics["name"] == "Total Tokens"]
    admitted = total.groupby(["subscription", total["timestamp"].dt.floor("1min")])["valueSum"].sum()
    row = csv[csv["tokens"].astype(float) > 0].iloc[0]
    key = (row["subscription"] if row["subscription"] != "(none)" else "", pd.Timestamp(row["minute"]))
    assert float(row["tokens"]) == admitted.loc[key]


def test_throttled_subscriptions_are_counted(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("throttling")
    rows = requests_in_range(demo_rows, demo_settings, demo_end)
    throttled = rows.loc[rows["resultCode"].isin(["429", "403"]), "subscription"].nunique()
    assert metric(at, "Subscriptions throttled").value == f"{throttled} of {rows['subscription'].nunique()}"


def test_api_filter_narrows_the_rates(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("throttling", api=["chat"])
    rows = requests_in_range(demo_rows, demo_settings, demo_end)
    chat = rows[rows["api"] == "chat"]
    hits = chat.loc[chat["resultCode"] == "429", "itemCount"].sum()
    assert metric(at, "429 rate limited").value == f"{hits / chat['itemCount'].sum():.2%}"


def test_empty_range_says_so(open_page):
    at = open_page("throttling", end="2019-05-01T00:00:00Z")
    assert any("No gateway requests or tokens between" in i.value for i in at.info)
