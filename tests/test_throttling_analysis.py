"""Early retries, the what-if and the causes, checked against independent computations over the
same seeded rows (plain Python loops and pandas, not the code under test)."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tokenboard import planning, reports, retries
from tokenboard.hits import CAUSES

DAYS = 3


@pytest.fixture(scope="module")
def span(demo_end):
    return {"start_time": demo_end - timedelta(days=DAYS), "end_time": demo_end}


@pytest.fixture(scope="module")
def calls(demo_rows, demo_settings):
    """Every call with a subscription (401s have none), with its subscription and Retry-After."""
    rows = demo_rows.requests[demo_rows.requests["resultCode"] != "401"]
    dims = rows["customDimensions"].map(json.loads)
    return rows.assign(
        subscription=dims.map(lambda d: d.get(demo_settings.telemetry.request_subscription_key, "")),
        retry_after=dims.map(lambda d: d.get(demo_settings.telemetry.retry_after_key)),
    )


def test_early_retries_equal_a_call_by_call_count(seeded_backend, span, calls, demo_end):
    frame = seeded_backend.run_query(seeded_backend.bind("retry_calls", span, now=demo_end)).frame
    got = retries.behaviour(frame).set_index("subscription")

    expected = {}
    for subscription, mine in calls.sort_values("timestamp", kind="stable").groupby("subscription"):
        stamps, codes, waits = (
            mine["timestamp"].tolist(),
            mine["resultCode"].tolist(),
            mine["retry_after"].tolist(),
        )
        throttled = followed = early = 0
        gaps = []
        for i, code in enumerate(codes):
            if code != "429":
                continue
            throttled += 1
            if i + 1 == len(stamps) or stamps[i + 1] >= stamps[i].floor("min") + pd.Timedelta(minutes=2):
                continue  # the next call is past the minute after: not this 429's answer
            followed += 1
            gap = (stamps[i + 1] - stamps[i]).total_seconds()
            gaps.append(gap)
            early += gap < float(waits[i])
        if throttled:
            expected[subscription] = (
                throttled,
                followed,
                early,
                float(np.median(gaps)) if gaps else math.nan,
            )

    assert set(got.index) == set(expected)
    for subscription, (throttled, followed, early, median) in expected.items():
        row = got.loc[subscription]
        assert (row["throttled"], row["followed"], row["early_retries"]) == (throttled, followed, early), (
            subscription
        )
        if followed:
            assert row["early_retry_share"] == pytest.approx(early / followed)
            assert row["median_gap_seconds"] == pytest.approx(median)
    # The demo's hammering tenants retry early; the patient ones back off.
    assert got.loc["contoso-prod", "verdict"] == "retries early"
    assert got.loc["fabrikam-prod", "verdict"] == "backs off"


def test_worst_episode_counts_each_second(seeded_backend, span, demo_end, calls):
    frame = seeded_backend.run_query(seeded_backend.bind("retry_calls", span, now=demo_end)).frame
    episode = retries.worst_episode(frame, "contoso-prod")
    assert episode is not None and episode.reopened > episode.start
    mine = calls[calls["subscription"] == "contoso-prod"]
    window = mine[
        mine["timestamp"].between(
            episode.seconds["second"].min(),
            episode.seconds["second"].max() + pd.Timedelta(seconds=1),
            inclusive="left",
        )
    ]
    per_second = window.groupby(window["timestamp"].dt.floor("s"))["resultCode"]
    assert episode.seconds["throttled"].sum() == (window["resultCode"] == "429").sum() > 0
    assert episode.seconds["admitted"].sum() == (window["resultCode"] == "200").sum()
    assert len(per_second) <= len(episode.seconds)
    # The window reopened when the latest Retry-After of the episode ran out.
    refused = mine[(mine["resultCode"] == "429") & mine["timestamp"].between(episode.start, episode.reopened)]
    ends = refused["timestamp"] + pd.to_timedelta(refused["retry_after"].astype(float), unit="s")
    assert ends.max() == episode.reopened


@pytest.fixture(scope="module")
def minutes(demo_rows, demo_settings):
    """Total Tokens per subscription and minute, from the raw metric rows."""
    rows = demo_rows.metrics[demo_rows.metrics["name"] == demo_settings.telemetry.total_metric]
    dims = rows["customDimensions"].map(json.loads)
    sub = dims.map(lambda d: d.get(demo_settings.telemetry.subscription_dimension, ""))
    return rows.groupby([sub.rename("subscription"), rows["timestamp"].dt.floor("min")])["valueSum"].sum()


@pytest.mark.parametrize(("candidate", "budget"), [(5_000, 0.01), (9_000, 0.05), (2_500, 0.001)])
def test_what_if_and_percentiles_equal_pandas(
    seeded_backend, demo_settings, span, minutes, candidate, budget
):
    params = span | {"candidate": candidate, "refusal_budget": budget}
    plan = reports.build_report("limit_plan", seeded_backend, params).set_index("subscription")
    assert set(plan.index) == set(minutes.index.get_level_values(0))
    for subscription, tokens in minutes.groupby(level=0):
        row, values = plan.loc[subscription], tokens.to_numpy()
        over = values[values > candidate]
        assert row["active_minutes"] == len(values)
        assert row["minutes_over_candidate"] == len(over)
        assert row["tokens_refused_at_candidate"] == pytest.approx((over - candidate).sum())
        assert row["share_of_minutes_over_candidate"] == pytest.approx(len(over) / len(values))
        for q in (50, 95, 99):  # nearest rank, as KQL's percentile()
            assert row[f"p{q}_tokens_per_minute"] == np.quantile(values, q / 100, method="inverted_cdf")
        assert row["max_tokens_per_minute"] == values.max()
        suggested = row["suggested_limit"]
        assert suggested == planning.round_up(np.quantile(values, 1 - budget, method="inverted_cdf"))
        assert (values > suggested).sum() <= budget * len(values)
        assert row["tokens_per_minute_limit"] == demo_settings.limits.for_subscription(subscription)


def test_throttling_summary_adds_the_causes(seeded_backend, span, demo_rows):
    summary = reports.build_report("throttling_summary", seeded_backend, span).set_index("subscription")
    assert list(summary.columns[-5:]) == list(CAUSES)
    requests = demo_rows.requests
    forwarded = requests["operation_Id"].isin(demo_rows.dependencies["operation_Id"])
    body = requests["customDimensions"].map(lambda t: json.loads(t).get("Response-Body", ""))
    sub = requests["customDimensions"].map(lambda t: json.loads(t).get("Subscription Name", ""))
    code = requests["resultCode"]
    expected = (
        pd.DataFrame(
            {
                "gateway_429": (code == "429") & ~forwarded,
                "backend_429": (code == "429") & forwarded,
                "quota_403": (code == "403") & body.str.contains("Token quota is exceeded"),
                "other_403": (code == "403") & ~body.str.contains("Token quota is exceeded"),
            }
        )
        .mul(requests["itemCount"], axis=0)
        .groupby(sub)
        .sum()
    )
    for cause in ("gateway_429", "backend_429", "quota_403", "other_403"):
        got = summary[cause].reindex(expected.index, fill_value=0)
        pd.testing.assert_series_equal(
            got.astype("int64"), expected[cause].astype("int64"), check_names=False
        )
    assert (summary["gateway_429"] + summary["backend_429"] == summary["rate_limited_429"]).all()
    assert (summary["quota_403"] + summary["other_403"] == summary["quota_exceeded_403"]).all()
