"""Every query file, run by the local backend, against the same numbers computed in pandas.

The pandas side reads the seeded Parquet rows with pyarrow alone (``demo_rows``): its own
JSON parsing of customDimensions, ``sum(valueSum)`` for tokens, ``sum(itemCount)`` for
requests and pandas' own time bins. A new query file without a check here fails
``test_every_query_file_has_a_pandas_check``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tokenboard import demo, kql

UNICODE = "müller-ağ-東京"
QUOTED = 'o\'brien "quoted" team'
TIME_KEYS = {"start_time", "end_time"}


def _window(end: datetime, back: timedelta, until: timedelta = timedelta(0)) -> dict[str, datetime]:
    return {"start_time": end - back, "end_time": end - until}


# Parameter sets, by id; each runs on every query that declares all its non-time keys.
CASES: dict[str, Callable[[datetime], dict[str, Any]]] = {
    "window": lambda e: _window(e, timedelta(days=2, minutes=-13), timedelta(hours=3)),
    "all_days": lambda e: _window(e, timedelta(days=3)),
    "unicode_subscription": lambda e: {
        **_window(e, timedelta(days=3)),
        "subscriptions": [UNICODE, "contoso-prod"],
    },
    "quoted_and_empty_subscription": lambda e: {
        **_window(e, timedelta(days=2)),
        "subscriptions": [QUOTED, ""],
        "apis": ["chat", "completions-v1"],
    },
    "apis": lambda e: {**_window(e, timedelta(days=1)), "apis": ["embeddings", "messages"]},
    "models_with_empty": lambda e: {
        **_window(e, timedelta(days=3)),
        "models": ["gpt-4o-mini", "", "o4-mini"],
    },
    "no_such_subscription": lambda e: {**_window(e, timedelta(days=3)), "subscriptions": ["nobody"]},
    "empty_range": lambda e: _window(e, timedelta(days=20), timedelta(days=19)),
    "bin_5m": lambda e: {**_window(e, timedelta(hours=6)), "bin_size": timedelta(minutes=5)},
    "bin_1d": lambda e: {**_window(e, timedelta(days=3)), "bin_size": timedelta(days=1)},
    # Local days in New York (UTC-5) and local hours in Kolkata (UTC+5:30).
    "bin_1d_phase_5h": lambda e: {
        **_window(e, timedelta(days=3)),
        "bin_size": timedelta(days=1),
        "bin_phase": timedelta(hours=5),
    },
    "days_in_kolkata": lambda e: {
        **_window(e, timedelta(days=3)),
        "bin_phase": timedelta(hours=18, minutes=30),
    },
    "bin_1h_phase_30m": lambda e: {
        **_window(e, timedelta(hours=30)),
        "bin_size": timedelta(hours=1),
        "bin_phase": timedelta(minutes=30),
    },
    "split_subscription": lambda e: {**_window(e, timedelta(days=1)), "split_by": "subscription"},
    "split_api": lambda e: {**_window(e, timedelta(days=1)), "split_by": "api"},
    "split_model": lambda e: {**_window(e, timedelta(days=1)), "split_by": "model"},
}


def _applies(query: kql.QueryFile, case: str) -> bool:
    return set(CASES[case](datetime(2025, 1, 1))) <= {p.name for p in query.params}


RUNS = [
    (name, case) for name, query in sorted(kql.catalog().items()) for case in CASES if _applies(query, case)
]


# --- the pandas side ------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(demo_rows, demo_settings) -> dict[str, pd.DataFrame]:
    """Seeded rows with the configured dimensions as columns; "" when a key is missing,
    as KQL's ``tostring`` of a missing dynamic value gives."""
    s = demo_settings
    metrics, requests = demo_rows.metrics.copy(), demo_rows.requests.copy()
    mdims = metrics["customDimensions"].map(json.loads)
    rdims = requests["customDimensions"].map(json.loads)
    metrics["subscription"] = mdims.map(lambda d: d.get(s.telemetry.subscription_dimension, ""))
    metrics["api"] = mdims.map(lambda d: d.get(s.telemetry.api_dimension, ""))
    metrics["model"] = mdims.map(lambda d: d.get(s.telemetry.model_dimension, ""))
    requests["subscription"] = rdims.map(lambda d: d.get(s.telemetry.request_subscription_key, ""))
    requests["api"] = rdims.map(lambda d: d.get(s.telemetry.request_api_key, ""))
    requests["retry_after"] = rdims.map(lambda d: d.get(s.telemetry.retry_after_key)).astype("Int64")
    requests["response_body"] = rdims.map(lambda d: d.get(s.telemetry.response_body_key, ""))
    return {"metrics": metrics, "requests": requests, "dependencies": demo_rows.dependencies,
            "total": s.telemetry.total_metric, "prompt": s.telemetry.prompt_metric,
            "completion": s.telemetry.completion_metric, "cached": s.telemetry.cached_metric,
            "reasoning": s.telemetry.reasoning_metric}  # fmt: skip


def _scoped(frame: pd.DataFrame, v: dict[str, Any], models: bool = True) -> pd.DataFrame:
    frame = frame[(frame["timestamp"] >= v["start_time"]) & (frame["timestamp"] < v["end_time"])]
    for key, column in (("subscriptions", "subscription"), ("apis", "api"), ("models", "model")):
        if v.get(key) and (models or key != "models"):
            frame = frame[frame[column].isin(v[key])]
    return frame


def _totals(d: dict, v: dict) -> pd.DataFrame:
    m = _scoped(d["metrics"], v)
    return m[m["name"] == d["total"]]


def _sorted(frame: pd.DataFrame, by: list[str], descending: tuple[str, ...] = ()) -> pd.DataFrame:
    return frame.sort_values(by, ascending=[c not in descending for c in by], kind="stable").reset_index(
        drop=True
    )


def _minute(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("min")


def _bin(ts: pd.Series, v: dict) -> pd.Series:
    """KQL's ``bin(timestamp - bin_phase, bin_size) + bin_phase``."""
    phase = pd.Timedelta(v.get("bin_phase", timedelta(0)))
    return (ts - phase).dt.floor(pd.Timedelta(v.get("bin_size", timedelta(days=1)))) + phase


EXPECTED: dict[str, Callable[[dict, dict], pd.DataFrame]] = {}


def expected(name: str):
    def register(function):
        EXPECTED[name] = function
        return function

    return register


@expected("call_counts")
def _call_counts(d, v):
    out = (
        _totals(d, v)
        .groupby(["subscription", "api"], as_index=False)
        .agg(calls=("valueCount", "sum"), tokens=("valueSum", "sum"))
    )
    out["tokens_per_call"] = (out["tokens"] / out["calls"]).where(out["calls"] > 0, 0.0)
    return _sorted(out, ["calls", "subscription", "api"], ("calls",))


@expected("cost_basis")
def _cost_basis(d, v):
    m = _scoped(d["metrics"], v)
    columns = {
        d["total"]: "total_tokens",
        d["prompt"]: "prompt_tokens",
        d["cached"]: "cached_tokens",
        d["completion"]: "completion_tokens",
        d["reasoning"]: "reasoning_tokens",
    }
    m = m[m["name"].isin(columns)]
    # A bin on the local grid, cut at 00:00 UTC (each part is priced at its own day's rate).
    bins = np.maximum(_bin(m["timestamp"], v), m["timestamp"].dt.floor("D"))
    m = m.assign(timestamp=bins, column=m["name"].map(columns))
    split = v["split_by"]
    m = m.assign(series=m[split] if split in ("subscription", "api", "model") else "")
    keys = ["timestamp", "series", "api", "model"]
    wide = m.pivot_table(index=keys, columns="column", values="valueSum", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(columns=list(columns.values()), fill_value=0.0)
    calls = m[m["name"] == d["total"]].groupby(keys)["valueCount"].sum()
    wide["calls"] = calls.reindex(wide.index).fillna(0).astype("int64")
    wide.columns.name = None
    return _sorted(wide.reset_index(), keys)


@expected("dimension_values")
def _dimension_values(d, v):
    out = (
        _totals(d, v)
        .groupby(["subscription", "api", "model"], as_index=False)
        .agg(tokens=("valueSum", "sum"))
    )
    return _sorted(out, ["tokens", "subscription", "api", "model"], ("tokens",))


def _request_counts(r: pd.DataFrame) -> pd.DataFrame:
    return r.assign(
        requests=r["itemCount"],
        rate_limited=r["itemCount"].where(r["resultCode"] == "429", 0),
        quota_exceeded=r["itemCount"].where(r["resultCode"] == "403", 0),
        failed=r["itemCount"].where(~r["success"], 0),
    )


@expected("limit_hits")
def _limit_hits(d, v):
    r = _request_counts(_scoped(d["requests"], v))
    hit_time = r["timestamp"].where(r["resultCode"].isin(["429", "403"]))
    out = (
        r.assign(hit_time=hit_time)
        .groupby(["subscription", "api"], as_index=False)
        .agg(
            requests=("requests", "sum"),
            rate_limited=("rate_limited", "sum"),
            quota_exceeded=("quota_exceeded", "sum"),
            first_hit=("hit_time", "min"),
            last_hit=("hit_time", "max"),
        )
    )
    hits = out["rate_limited"] + out["quota_exceeded"]
    out["hit_rate"] = (hits / out["requests"]).where(out["requests"] > 0, 0.0)
    out["_hits"] = hits
    out = _sorted(out, ["_hits", "requests", "subscription", "api"], ("_hits", "requests"))
    return out.drop(columns="_hits")


@expected("limit_hit_causes")
def _limit_hit_causes(d, v):
    deps = d["dependencies"]
    deps = deps[(deps["timestamp"] >= v["start_time"]) & (deps["timestamp"] < v["end_time"])]
    logged = len(deps) > 0
    deps = deps[deps["operation_Id"].fillna("") != ""]
    called, refused = set(deps["operation_Id"]), set(deps.loc[deps["resultCode"] == "429", "operation_Id"])
    r = _scoped(d["requests"], v)
    r = r[r["resultCode"].isin(["429", "403"])].copy()
    op, body, code = r["operation_Id"].fillna(""), r["response_body"], r["resultCode"]
    is_called, is_refused = op.isin(called) & (op != ""), op.isin(refused) & (op != "")
    known = logged & (op != "")

    def cause(i: int) -> str:
        c, b = code.iloc[i], body.iloc[i]
        if c == "429":
            if is_refused.iloc[i]:
                return "backend_429"
            if is_called.iloc[i]:
                return "unattributed"
            if known.iloc[i] or '"statusCode"' in b:
                return "gateway_429"
            return "backend_429" if '"error"' in b else "unattributed"
        if is_called.iloc[i]:
            return "other_403"
        if "Token quota is exceeded" in b:
            return "quota_403"
        if b:
            return "other_403"
        return "quota_403" if known.iloc[i] else "unattributed"

    r["cause"] = [cause(i) for i in range(len(r))]
    for name in ("gateway_429", "backend_429", "quota_403", "other_403", "unattributed"):
        r[name] = r["itemCount"].where(r["cause"] == name, 0)
    r["assumed_quota"] = r["itemCount"].where((r["cause"] == "quota_403") & (body == ""), 0)
    r["timestamp"] = _bin(r["timestamp"], v)
    columns = ["gateway_429", "backend_429", "quota_403", "other_403", "unattributed", "assumed_quota"]
    out = r.groupby(["timestamp", "subscription", "api"], as_index=False)[columns].sum()
    out["backend_logged"] = logged
    return _sorted(out, ["timestamp", "subscription", "api"])


@expected("retry_calls")
def _retry_calls(d, v):
    r = _scoped(d["requests"], v)
    r = r[r["resultCode"] != "401"].assign(minute=lambda f: _minute(f["timestamp"]))
    hit = r.loc[r["resultCode"] == "429", ["subscription", "minute"]].drop_duplicates()
    windows = pd.concat([hit, hit.assign(minute=hit["minute"] + pd.Timedelta(minutes=1))]).drop_duplicates()
    out = r.merge(windows, on=["subscription", "minute"])
    out = out[["timestamp", "subscription", "api", "resultCode", "retry_after", "itemCount"]]
    by = ["timestamp", "subscription", "api", "resultCode", "retry_after"]
    return _sorted(out, by, ("timestamp",)).head(50_000)


@expected("limit_plan")
def _limit_plan(d, v):
    import numpy as np

    def nearest_rank(q: float):
        return lambda x: np.quantile(x.to_numpy(), q, method="inverted_cdf")

    per, candidate = _per_minute(d, v), v["candidate"]
    per["over"] = per["valueSum"] > candidate
    per["refused"] = (per["valueSum"] - candidate).where(per["over"], 0.0)
    out = per.groupby("subscription", as_index=False).agg(
        active_minutes=("valueSum", "size"),
        p50_tokens=("valueSum", nearest_rank(0.50)),
        p95_tokens=("valueSum", nearest_rank(0.95)),
        p99_tokens=("valueSum", nearest_rank(0.99)),
        max_tokens=("valueSum", "max"),
        minutes_over=("over", "sum"),
        tokens_refused=("refused", "sum"),
        suggested=("valueSum", nearest_rank(100.0 * (1.0 - v["refusal_budget"]) / 100.0)),
    )
    return _sorted(out, ["max_tokens", "subscription"], ("max_tokens",))


def _usage_by_bin(d, v, keys: list[str]) -> pd.DataFrame:
    m = _scoped(d["metrics"], v)
    out = (
        m.assign(timestamp=_bin(m["timestamp"], v), metric=m["name"])
        .groupby(["timestamp", *keys, "metric"], as_index=False)
        .agg(tokens=("valueSum", "sum"), calls=("valueCount", "sum"))
    )
    return _sorted(out, ["timestamp", *keys, "metric"])


@expected("daily_usage")
def _daily_usage(d, v):
    return _usage_by_bin(d, v, ["subscription", "api"])


@expected("monthly_usage")
def _monthly_usage(d, v):
    return _usage_by_bin(d, v, ["subscription"])


@expected("data_coverage")
def _data_coverage(d, v):
    def first(frame: pd.DataFrame):
        times = _scoped(frame, v)["timestamp"]
        return times.min() if len(times) else pd.NaT

    return pd.DataFrame(
        {
            "metrics_first": pd.Series([first(d["metrics"])], dtype="datetime64[ns, UTC]"),
            "requests_first": pd.Series([first(d["requests"])], dtype="datetime64[ns, UTC]"),
        }
    )


def _per_minute(d, v) -> pd.DataFrame:
    t = _totals(d, v)
    return (
        t.assign(minute=_minute(t["timestamp"]))
        .groupby(["subscription", "minute"], as_index=False)["valueSum"]
        .sum()
    )


@expected("peak_minute_tokens")
def _peak_minute_tokens(d, v):
    per = _per_minute(d, v)
    peak_at = per.loc[per.groupby("subscription")["valueSum"].idxmax(), ["subscription", "minute"]]
    out = per.groupby("subscription", as_index=False).agg(
        peak_tokens=("valueSum", "max"), active_minutes=("minute", "count"), mean_tokens=("valueSum", "mean")
    )
    out = out.merge(peak_at.rename(columns={"minute": "peak_minute"}), on="subscription")
    out = out[["subscription", "peak_tokens", "peak_minute", "active_minutes", "mean_tokens"]]
    return _sorted(out, ["peak_tokens", "subscription"], ("peak_tokens",))


@expected("peak_tokens_over_time")
def _peak_tokens_over_time(d, v):
    per = _per_minute(d, v)
    per["timestamp"] = _bin(per["minute"], v)
    out = per.groupby(["timestamp", "subscription"], as_index=False).agg(peak_tokens=("valueSum", "max"))
    return _sorted(out, ["timestamp", "subscription"])


@expected("request_totals")
def _request_totals(d, v):
    r = _request_counts(_scoped(d["requests"], v))
    requests = int(r["requests"].sum())
    duration = float((r["duration"] * r["itemCount"]).sum())
    row = {
        "requests": requests,
        "rate_limited": int(r["rate_limited"].sum()),
        "quota_exceeded": int(r["quota_exceeded"].sum()),
        "failed": int(r["failed"].sum()),
        "avg_duration_ms": duration / requests if requests else 0.0,
    }
    return pd.DataFrame([row])


@expected("requests_over_time")
def _requests_over_time(d, v):
    r = _request_counts(_scoped(d["requests"], v))
    series = {"subscription": r["subscription"], "api": r["api"]}.get(v["split_by"], "all")
    r = r.assign(timestamp=_bin(r["timestamp"], v), series=series)
    out = r.groupby(["timestamp", "series"], as_index=False)[
        ["requests", "rate_limited", "quota_exceeded", "failed"]
    ].sum()
    return _sorted(out, ["timestamp", "series"])


@expected("throttled_minutes")
def _throttled_minutes(d, v):
    r = _request_counts(_scoped(d["requests"], v, models=False))  # models narrow only tokens
    r = r[r["resultCode"].isin(["429", "403"])]
    hits = (
        r.assign(minute=_minute(r["timestamp"]))
        .groupby(["subscription", "minute"], as_index=False)[["rate_limited", "quota_exceeded"]]
        .sum()
    )
    t = _totals(d, v)
    admitted = (
        t.assign(minute=_minute(t["timestamp"]))
        .groupby(["subscription", "minute"], as_index=False)
        .agg(tokens=("valueSum", "sum"), calls=("valueCount", "sum"))
    )
    out = hits.merge(admitted, on=["subscription", "minute"], how="left")
    out["tokens"] = out["tokens"].fillna(0.0)
    out["calls"] = out["calls"].fillna(0).astype("int64")
    out = out[["minute", "subscription", "rate_limited", "quota_exceeded", "tokens", "calls"]]
    return _sorted(out, ["minute", "subscription"], ("minute",)).head(2000)


@expected("tokens_over_time")
def _tokens_over_time(d, v):
    m = _scoped(d["metrics"], v)
    split = v["split_by"]
    if split != "metric":
        m = m[m["name"] == d["total"]]
    series = m[split] if split in ("subscription", "api", "model") else m["name"]
    m = m.assign(timestamp=_bin(m["timestamp"], v), series=series)
    out = m.groupby(["timestamp", "series"], as_index=False).agg(
        tokens=("valueSum", "sum"), calls=("valueCount", "sum")
    )
    return _sorted(out, ["timestamp", "series"])


@expected("top_consumers")
def _top_consumers(d, v):
    m = _scoped(d["metrics"], v)
    grand = m.loc[m["name"] == d["total"], "valueSum"].sum()

    def only(name: str, column: str = "valueSum") -> pd.Series:
        return m[column].where(m["name"] == name, 0)

    out = (
        m.assign(
            total_tokens=only(d["total"]),
            prompt_tokens=only(d["prompt"]),
            completion_tokens=only(d["completion"]),
            calls=only(d["total"], "valueCount"),
        )
        .groupby("subscription", as_index=False)[
            ["total_tokens", "prompt_tokens", "completion_tokens", "calls"]
        ]
        .sum()
    )
    out["share"] = out["total_tokens"] / grand if grand > 0 else 0.0
    return _sorted(out, ["total_tokens", "subscription"], ("total_tokens",)).head(100)


@expected("usage_pivot")
def _usage_pivot(d, v):
    m = _scoped(d["metrics"], v)
    out = (
        m.assign(metric=m["name"])
        .groupby(["subscription", "api", "model", "metric"], as_index=False)
        .agg(tokens=("valueSum", "sum"), calls=("valueCount", "sum"))
    )
    return _sorted(out, ["tokens", "subscription", "api", "model", "metric"], ("tokens",))


# --- comparing ------------------------------------------------------------------------


def _run(backend, name: str, params: dict) -> tuple[pd.DataFrame, dict]:
    bound = backend.bind(name, params)
    return backend.run_query(bound).frame, dict(bound.values)


def _assert_same(actual: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    assert list(actual.columns) == list(want.columns), name
    if name == "peak_minute_tokens":  # arg_max may pick any of tied peak minutes
        actual, want = actual.drop(columns="peak_minute"), want.drop(columns="peak_minute")
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True),
        want.reset_index(drop=True),
        check_dtype=False,
        check_index_type=False,
        rtol=1e-9,
        obj=name,
    )


@pytest.mark.parametrize("name", sorted(kql.catalog()))
def test_every_query_file_has_a_pandas_check(name):
    assert name in EXPECTED, f"queries/{name}.kql has no pandas cross-check in {__name__}"
    assert sum(1 for n, _ in RUNS if n == name) >= 3, f"{name} runs on too few parameter sets"


@pytest.mark.parametrize(("name", "case"), RUNS, ids=[f"{n}-{c}" for n, c in RUNS])
def test_query_matches_pandas(seeded_backend, data, demo_end, name, case):
    actual, values = _run(seeded_backend, name, CASES[case](demo_end))
    want = EXPECTED[name](data, values)
    _assert_same(actual, want, name)
    if case == "all_days":  # the comparison means something only over real rows
        assert len(want) > 0 and (name != "request_totals" or want["requests"].iloc[0] > 0)


def test_peak_minute_is_a_minute_with_the_peak(seeded_backend, data, demo_end):
    actual, values = _run(seeded_backend, "peak_minute_tokens", _window(demo_end, timedelta(days=3)))
    per = _per_minute(data, values).set_index(["subscription", "minute"])["valueSum"]
    for row in actual.itertuples():
        assert per[(row.subscription, row.peak_minute)] == row.peak_tokens


@pytest.mark.parametrize("name", sorted(kql.catalog()))
def test_empty_range_gives_empty_frame(seeded_backend, demo_end, name):
    frame, _ = _run(seeded_backend, name, _window(demo_end, timedelta(days=20), timedelta(days=19)))
    if name == "request_totals":  # a summary row of zeros, not nothing
        assert frame.to_dict("records") == [
            {"requests": 0, "rate_limited": 0, "quota_exceeded": 0, "failed": 0, "avg_duration_ms": 0.0}
        ]
    elif name == "data_coverage":  # one row saying there is no data
        assert len(frame) == 1 and frame.isna().all(axis=None)
    else:
        assert frame.empty and len(frame.columns) >= 3


def test_unknown_metric_names_flow_through_usage_pivot(seeded_backend, data, demo_end):
    frame, _ = _run(seeded_backend, "usage_pivot", _window(demo_end, timedelta(days=3)))
    metrics = set(frame["metric"])
    assert {demo.CACHED_METRIC, demo.REASONING_METRIC} <= metrics
    cached = frame[frame["metric"] == demo.CACHED_METRIC]["tokens"].sum()
    m = data["metrics"]
    assert cached == m.loc[m["name"] == demo.CACHED_METRIC, "valueSum"].sum() > 0


def test_unknown_metric_names_are_series_of_tokens_over_time(seeded_backend, demo_end):
    frame, _ = _run(seeded_backend, "tokens_over_time", _window(demo_end, timedelta(days=1)))
    assert {demo.CACHED_METRIC, demo.REASONING_METRIC} <= set(frame["series"])


def test_empty_dimension_values_are_rows_not_dropped(seeded_backend, demo_end):
    frame, _ = _run(seeded_backend, "usage_pivot", _window(demo_end, timedelta(days=3)))
    assert (frame["model"] == "").any(), "the legacy API has no Model dimension"
    assert (frame["subscription"] == "").any(), "anonymous traffic has an empty subscription"
    only_empty, _ = _run(
        seeded_backend, "usage_pivot", {**_window(demo_end, timedelta(days=3)), "models": [""]}
    )
    assert set(only_empty["model"]) == {""} and set(only_empty["api"]) == {"completions-v1"}


def test_filters_narrow_the_numbers(seeded_backend, demo_end):
    window = _window(demo_end, timedelta(days=3))
    everyone, _ = _run(seeded_backend, "top_consumers", window)
    two, _ = _run(seeded_backend, "top_consumers", {**window, "subscriptions": [UNICODE, QUOTED]})
    assert set(two["subscription"]) == {UNICODE, QUOTED}
    by_sub = everyone.set_index("subscription")["total_tokens"]
    assert two.set_index("subscription")["total_tokens"].to_dict() == {
        UNICODE: by_sub[UNICODE],
        QUOTED: by_sub[QUOTED],
    }
    assert two["total_tokens"].sum() < everyone["total_tokens"].sum()
    assert two["share"].sum() == pytest.approx(1.0)
    chat, _ = _run(seeded_backend, "request_totals", {**window, "apis": ["chat"]})
    every, _ = _run(seeded_backend, "request_totals", window)
    assert 0 < chat["requests"][0] < every["requests"][0]


def test_throttled_minutes_show_tokens_at_the_limit(seeded_backend, demo_settings, demo_end, data, demo_rows):
    frame, _ = _run(seeded_backend, "throttled_minutes", _window(demo_end, timedelta(days=3)))
    # Minutes in which someone else refused the subscription (the deployment's 429, a
    # content-safety 403) say nothing about its own limit or quota: leave them out.
    r = data["requests"]
    forwarded = r["operation_Id"].isin(demo_rows.dependencies["operation_Id"])
    body = r["customDimensions"].map(lambda t: json.loads(t).get("Response-Body", ""))
    others = r[
        ((r["resultCode"] == "429") & forwarded) | ((r["resultCode"] == "403") & ~body.str.contains("quota"))
    ]
    elsewhere = set(zip(others["subscription"], _minute(others["timestamp"]), strict=True))
    frame = frame[[key not in elsewhere for key in zip(frame["subscription"], frame["minute"], strict=True)]]
    rate = frame[(frame["rate_limited"] > 0) & (frame["quota_exceeded"] == 0)]
    assert len(rate) > 50
    limits = rate["subscription"].map(demo_settings.limits.for_subscription)
    assert ((rate["tokens"] > 0.85 * limits) & (rate["tokens"] <= limits)).all()
    quota = frame[frame["quota_exceeded"] > 0]
    assert set(quota["subscription"]) == {demo.QUOTA_TENANT}
