"""Throttling page: 429 and 403 rates, worst subscriptions, headroom against configured limits."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from pagetools import between, csv_frame, download, metrics_with_dims, requests_with_dims

from tokenboard import demo, planning

DAY = timedelta(hours=24)


def requests_in_range(demo_rows, demo_settings, demo_end) -> pd.DataFrame:
    return requests_with_dims(between(demo_rows.requests, demo_end - DAY, demo_end), demo_settings)


def metric(at, label):
    return next(m for m in at.metric if m.label == label)


@pytest.fixture
def minute_tokens(demo_rows, demo_settings, demo_end) -> pd.Series:
    rows = metrics_with_dims(
        between(demo_rows.metrics, demo_end - timedelta(days=7), demo_end), demo_settings
    )
    total = rows[rows["name"] == "Total Tokens"]
    return total.groupby(["subscription", total["timestamp"].dt.floor("1min")])["valueSum"].sum()


def test_429_and_403_rates_equal_pandas(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("throttling", range="7d")
    rows = requests_with_dims(
        between(demo_rows.requests, demo_end - timedelta(days=7), demo_end), demo_settings
    )
    n = rows["itemCount"].sum()
    for label, code in (("429 rate limited", "429"), ("403 refused", "403")):
        hits = rows.loc[rows["resultCode"] == code, "itemCount"].sum()
        assert hits > 0, code
        assert metric(at, label).value == f"{hits / n:.1%}"


def test_403_headline_does_not_call_every_403_a_quota(open_page):
    """A 403 may come from the token quota or another policy: the headline names both."""
    at = open_page("throttling", range="7d")
    assert "quota" not in metric(at, "403 refused").label
    assert "the token quota or another policy" in metric(at, "403 refused").help


def test_rates_over_time_csv_separates_429_and_403(open_page, downloads, demo_rows, demo_settings, demo_end):
    at = open_page("throttling")
    csv = csv_frame(download(at, downloads, "limit_hit_rate_over_time.csv"))
    rows = requests_in_range(demo_rows, demo_settings, demo_end)
    assert csv["rate_limited"].astype(int).sum() == rows.loc[rows["resultCode"] == "429", "itemCount"].sum()
    assert csv["quota_exceeded"].astype(int).sum() == rows.loc[rows["resultCode"] == "403", "itemCount"].sum()
    assert csv["requests"].astype(int).sum() == rows["itemCount"].sum()
    # The demo ended long ago: only the first and last 15-minute bins, cut at 14:07 by the
    # range, are incomplete.
    assert list(csv["complete"]) == ["false"] + ["true"] * (len(csv) - 2) + ["false"]


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
    assert metric(at, "429 rate limited").value == f"{hits / chat['itemCount'].sum():.1%}"


def test_empty_range_says_so(open_page):
    at = open_page("throttling", end="2019-05-01T00:00:00Z")
    assert any("No gateway requests or tokens between" in i.value for i in at.info)


# --- who refused, what clients did next, the limit that fits (issue 14) --------------------


def causes_in_range(demo_rows, demo_settings, start, end) -> pd.Series:
    rows = requests_with_dims(between(demo_rows.requests, start, end), demo_settings)
    forwarded = rows["operation_Id"].isin(demo_rows.dependencies["operation_Id"])
    body = rows["customDimensions"].map(lambda t: json.loads(t).get("Response-Body", ""))
    quota = body.str.contains("Token quota is exceeded")
    code = rows["resultCode"]
    flags = {
        "429 gateway token limit": (code == "429") & ~forwarded,
        "429 model deployment's limit": (code == "429") & forwarded,
        "403 token quota": (code == "403") & quota,
        "403 other (content safety, backend, ...)": (code == "403") & ~quota,
    }
    return pd.Series({label: int(rows.loc[flag, "itemCount"].sum()) for label, flag in flags.items()})


def test_who_refused_shows_each_cause_as_counted_from_the_rows(open_page, demo_rows, demo_settings, demo_end):
    at = open_page("throttling", range="7d")
    expected = causes_in_range(demo_rows, demo_settings, demo_end - timedelta(days=7), demo_end)
    assert (expected > 0).all(), expected  # the demo holds every cause
    for label, count in expected.items():
        assert metric(at, label).value == f"{count:,}"
    assert not any("No backend calls" in i.value for i in at.info)


def test_causes_by_subscription_csv(open_page, downloads, demo_rows, demo_settings, demo_end):
    at = open_page("throttling", range="7d", causes_by="subscription")
    csv = csv_frame(download(at, downloads, "limit_hit_causes_by_subscription.csv")).set_index("subscription")
    assert int(csv.loc[demo.QUOTA_TENANT, "quota_403"]) > 0
    hits = csv[["gateway_429", "backend_429", "quota_403", "other_403"]].astype(int).sum(axis=1)
    assert (hits == csv["hits"].astype(int)).all()
    rows = requests_with_dims(
        between(demo_rows.requests, demo_end - timedelta(days=7), demo_end), demo_settings
    )
    refused = rows[rows["resultCode"].isin(["429", "403"])].groupby("subscription")["itemCount"].sum()
    refused.index = refused.index.map(lambda s: s or "(none)")
    pd.testing.assert_series_equal(hits.sort_index(), refused.sort_index().astype("int64"), check_names=False)


def test_retry_behaviour_table_and_episode(open_page, downloads):
    at = open_page("throttling", range="7d")
    table = next(d.value for d in at.dataframe if "early_retry_share" in d.value.columns).set_index(
        "subscription"
    )
    assert table.loc["contoso-prod", "verdict"] == "retries early"
    assert table.loc["fabrikam-prod", "verdict"] == "backs off"
    assert (
        table.loc["contoso-prod", "early_retry_share"] > 0.5 > table.loc["fabrikam-prod", "early_retry_share"]
    )
    episode = csv_frame(download(at, downloads, "throttling_episode.csv"))
    assert set(episode["subscription"]) == {table.index[0]}
    assert episode["throttled"].astype(int).sum() > 0 and episode["reopened"].nunique() == 1


def test_the_candidate_slider_answers_the_what_if(open_page, minute_tokens):
    at = open_page("throttling", range="7d")
    at.selectbox(key="plan_subscription").set_value("contoso-prod").run()
    at.slider(key="candidate-contoso-prod").set_value(5_000).run()
    assert not at.exception
    values = minute_tokens["contoso-prod"].to_numpy()
    over = values[values > 5_000]
    assert metric(at, "Minutes over the candidate").value == f"{len(over):,}"
    assert metric(at, "Share of active minutes").value == f"{len(over) / len(values):.1%}"
    assert metric(at, "Tokens it would have refused").value == f"{round((over - 5_000).sum()):,}"
    at.select_slider(key="budget").set_value(0.05).run()
    suggested = planning.round_up(np.quantile(values, 0.95, method="inverted_cdf"))
    assert metric(at, "Suggested limit at 5.0%").value == f"{suggested:,}"
