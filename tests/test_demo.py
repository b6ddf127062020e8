"""Demo traffic: reproducible, shaped like APIM's telemetry, limits and quotas honoured."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenboard import demo
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store

END = datetime(2025, 6, 2, 11, 30, tzinfo=UTC)  # a Monday morning


def _read(store: Store, table: str) -> pd.DataFrame:
    return pa.concat_tables(pq.read_table(p) for p in store.segment_paths(table)).to_pandas()


def _dims(frame: pd.DataFrame) -> pd.Series:
    return frame["customDimensions"].map(json.loads)


def _small(tmp_path: Path, name: str, settings: Settings | None = None, **kwargs) -> tuple[Store, Settings]:
    settings = settings or Settings(data_dir=tmp_path / name, seed_on_start=False)
    store = Store(tmp_path / name)
    demo.seed(store, settings, **{"days": 0.25, "end": END, **kwargs})
    return store, settings


@pytest.fixture(scope="module")
def tables(demo_rows, demo_settings):
    """The seeded rows with the mapped dimensions as plain columns ("" when missing, as KQL's tostring)."""
    metrics, requests = demo_rows.metrics.copy(), demo_rows.requests.copy()
    mdims, rdims = _dims(metrics), _dims(requests)
    metrics["subscription"] = mdims.map(lambda d: d.get(demo_settings.telemetry.subscription_dimension, ""))
    requests["subscription"] = rdims.map(
        lambda d: d.get(demo_settings.telemetry.request_subscription_key, "")
    )
    requests["minute"] = requests["timestamp"].dt.floor("min")
    requests["forwarded"] = requests["operation_Id"].isin(demo_rows.dependencies["operation_Id"])
    return metrics, requests


def test_same_seed_gives_same_rows(tmp_path):
    first, _ = _small(tmp_path, "a", seed=11)
    second, _ = _small(tmp_path, "b", seed=11)
    other, _ = _small(tmp_path, "c", seed=12)
    for table in ("customMetrics", "requests", "dependencies"):
        pd.testing.assert_frame_equal(_read(first, table), _read(second, table))
    assert not _read(first, "customMetrics").equals(_read(other, "customMetrics"))


def test_traffic_ends_at_end_and_covers_the_days(demo_rows, demo_end):
    metrics, requests, _ = demo_rows
    start = pd.Timestamp(demo_end - timedelta(days=3))
    assert metrics["timestamp"].max() == pd.Timestamp(demo_end - timedelta(minutes=1))
    assert metrics["timestamp"].min() == start
    assert requests["timestamp"].max() < pd.Timestamp(demo_end)
    assert requests["timestamp"].min() >= start
    assert (metrics["timestamp"].dt.second == 0).all()  # pre-aggregated per minute


def test_default_end_is_now_floored_to_the_minute(tmp_path):
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    summary = demo.seed(Store(tmp_path), Settings(data_dir=tmp_path), days=0.02)
    after = datetime.now(UTC).replace(second=0, microsecond=0)
    assert before <= summary.end <= after
    assert summary.end - summary.start == timedelta(minutes=29)


def test_one_store_segment_per_utc_day(seeded_store, demo_end):
    # 3 days ending Monday 14:07: Fri (part), Sat, Sun, Mon (part).
    assert len(seeded_store.segments("customMetrics")) == 4
    assert len(seeded_store.segments("requests")) == 4


def test_429s_only_in_minutes_where_the_tenant_is_at_its_limit(tables, demo_settings):
    metrics, requests = tables
    admitted = (
        metrics[metrics["name"] == demo_settings.telemetry.total_metric]
        .groupby(["subscription", "timestamp"])["valueSum"]
        .sum()
    )
    limits = admitted.index.get_level_values(0).map(demo_settings.limits.for_subscription).to_numpy()
    assert (admitted.to_numpy() <= limits).all(), "admitted tokens never pass the limit"
    gateway = requests[(requests["resultCode"] == "429") & ~requests["forwarded"]]
    hits = gateway.groupby(["subscription", "minute"])["itemCount"].sum()
    assert len(hits) > 50 and hits.index.get_level_values(0).nunique() >= 3
    at_hit = admitted.reindex(hits.index.rename(["subscription", "timestamp"]), fill_value=0.0)
    hit_limits = at_hit.index.get_level_values(0).map(demo_settings.limits.for_subscription).to_numpy()
    # No single call is above 15 % of the limit, so a minute that turned calls away has
    # admitted more than 85 % of it.
    assert (at_hit.to_numpy() > 0.85 * hit_limits).all()
    assert at_hit.to_numpy().mean() > 0.93 * hit_limits.mean()


def test_admitted_calls_match_successful_requests_minute_by_minute(tables, demo_settings):
    metrics, requests = tables
    calls = (
        metrics[metrics["name"] == demo_settings.telemetry.total_metric]
        .groupby(["subscription", "timestamp"])["valueCount"]
        .sum()
    )
    ok = requests[requests["resultCode"] == "200"].groupby(["subscription", "minute"])["itemCount"].sum()
    ok.index = ok.index.rename(["subscription", "timestamp"])
    pd.testing.assert_series_equal(
        calls.sort_index().astype("int64"), ok.sort_index().astype("int64"), check_names=False
    )


def test_quota_tenant_gets_403_and_nothing_is_admitted_after_it(tables, demo_settings):
    metrics, requests = tables
    body = _dims(requests).map(lambda d: d.get(demo_settings.telemetry.response_body_key, ""))
    denied = requests[(requests["resultCode"] == "403") & body.str.contains("Token quota is exceeded")]
    assert set(denied["subscription"]) == {demo.QUOTA_TENANT}
    tenant = requests[requests["subscription"] == demo.QUOTA_TENANT]
    tenant_metrics = metrics[metrics["subscription"] == demo.QUOTA_TENANT]
    for day, first in denied.groupby(denied["timestamp"].dt.floor("D"))["timestamp"].min().items():
        later = tenant[(tenant["timestamp"] > first) & (tenant["timestamp"] < day + pd.Timedelta(days=1))]
        assert set(later["resultCode"]) == {"403"}
        later_metrics = tenant_metrics[
            (tenant_metrics["timestamp"] > first.floor("min"))
            & (tenant_metrics["timestamp"] < day + pd.Timedelta(days=1))
        ]
        assert later_metrics.empty


def test_noise_401_without_subscription_and_500_failures(tables, demo_settings):
    _, requests = tables
    unauthorized = requests[requests["resultCode"] == "401"]
    assert len(unauthorized) > 10
    assert not _dims(unauthorized).map(lambda d: demo_settings.telemetry.request_subscription_key in d).any()
    assert (requests["resultCode"] == "500").sum() > 0
    assert (requests["success"] == (requests["resultCode"].astype(int) < 400)).all()


def test_sampled_request_rows_stand_for_several_successes(demo_rows):
    requests = demo_rows.requests
    sampled = requests[requests["itemCount"] > 1]
    assert len(sampled) > 0
    assert set(sampled["resultCode"]) == {"200"}
    assert sampled["itemCount"].max() == demo.SAMPLED_EVERY
    assert (requests["itemCount"] == 1).mean() > 0.5  # a minority is sampled


def test_metric_aggregates_are_consistent(demo_rows):
    m = demo_rows.metrics
    assert (m["value"] == m["valueSum"]).all()
    assert (m["valueCount"] >= 1).all() and (m["itemCount"] == 1).all()
    mean = m["valueSum"] / m["valueCount"]
    assert (m["valueMin"] <= mean + 1e-9).all() and (mean <= m["valueMax"] + 1e-9).all()
    assert (m["valueStdDev"] >= 0).all()
    single = m[m["valueCount"] == 1]
    assert (single["valueMin"] == single["valueSum"]).all() and (single["valueStdDev"] == 0).all()
    assert (m["valueMax"] - m["valueMin"] >= 2 * m["valueStdDev"] - 1e-6).all()


def test_one_row_per_minute_per_combination_per_metric(demo_rows):
    keys = demo_rows.metrics[["timestamp", "name", "customDimensions"]]
    assert not keys.duplicated().any()


def test_unknown_metric_names_present_and_not_part_of_total(demo_rows, demo_settings):
    m = demo_rows.metrics
    names = set(m["name"])
    assert {demo.CACHED_METRIC, demo.REASONING_METRIC} <= names
    wide = m.pivot_table(index=["timestamp", "customDimensions"], columns="name", values="valueSum")
    total = wide[demo_settings.telemetry.total_metric]
    assert (
        total == wide[demo_settings.telemetry.prompt_metric] + wide[demo_settings.telemetry.completion_metric]
    ).all()
    cached = wide[demo.CACHED_METRIC].dropna()
    assert (cached <= wide.loc[cached.index, demo_settings.telemetry.prompt_metric]).all()
    reasoning = wide[demo.REASONING_METRIC].dropna()
    assert (reasoning <= wide.loc[reasoning.index, demo_settings.telemetry.completion_metric]).all()


def test_apim_keys_beside_the_configured_dimensions(demo_rows, demo_settings):
    mdims, rdims = _dims(demo_rows.metrics), _dims(demo_rows.requests)
    for key in ("Region", "Service ID", "Service Name", "Service Type"):
        assert mdims.map(lambda d, k=key: k in d).all()
    assert mdims.map(lambda d: demo_settings.telemetry.subscription_dimension in d).all()
    assert mdims.map(lambda d: demo_settings.telemetry.api_dimension in d).all()
    served = demo_rows.requests["resultCode"] != "401"
    assert rdims[served].map(lambda d: demo_settings.telemetry.request_api_key in d).all()
    for key in ("Region", "Operation Name", "Service Name"):
        assert rdims.map(lambda d, k=key: k in d).all()
    assert rdims[served].map(lambda d: "Product Name" in d).all()


def test_odd_dimension_values_present(demo_rows, demo_settings):
    mdims = _dims(demo_rows.metrics)
    subs = set(mdims.map(lambda d: d[demo_settings.telemetry.subscription_dimension]))
    assert {"müller-ağ-東京", 'o\'brien "quoted" team', ""} <= subs
    assert len(subs) == demo.DEFAULT_SUBSCRIPTIONS
    # The legacy API's policy has no Model dimension: the key is missing.
    assert (~mdims.map(lambda d: demo_settings.telemetry.model_dimension in d)).any()


def test_dimension_names_follow_settings(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "d",
        subscription_dimension="Subscription ID",
        api_dimension="Api",
        model_dimension="Deployment",
        request_subscription_key="Sub",
        request_api_key="Api Id",
        total_metric="Tokens Total",
    )
    store, _ = _small(tmp_path, "d", settings)
    mdims, rdims = _dims(_read(store, "customMetrics")), _dims(_read(store, "requests"))
    assert mdims.map(lambda d: "Subscription ID" in d and "Api" in d and "Client Subscription" not in d).all()
    assert mdims.map(lambda d: "Deployment" in d).any()
    assert rdims.map(lambda d: "Api Id" in d and "API Name" not in d).all()
    assert rdims.map(lambda d: "Sub" in d).any()
    assert "Tokens Total" in set(_read(store, "customMetrics")["name"])
    # And the queries, bound with the same settings, find them.
    backend = LocalBackend(settings, store)
    frame = backend.run_query(
        backend.bind("dimension_values", {"start_time": END - timedelta(hours=6), "end_time": END})
    ).frame
    assert "contoso-prod" in set(frame["subscription"]) and frame["tokens"].sum() > 0


def test_limits_come_from_settings(tmp_path):
    settings = Settings(data_dir=tmp_path / "l", tokens_per_minute_overrides={"contoso-prod": 4000})
    store, _ = _small(tmp_path, "l", settings, days=0.5)
    m = _read(store, "customMetrics")
    m = m[m["name"] == settings.telemetry.total_metric]
    contoso = m[_dims(m).map(lambda d: d["Client Subscription"] == "contoso-prod")]
    per_minute = contoso.groupby("timestamp")["valueSum"].sum()
    assert per_minute.max() <= 4000 and per_minute.max() > 3000


def test_rows_scales_the_metric_row_count(tmp_path):
    small = demo.seed(Store(tmp_path / "s"), Settings(data_dir=tmp_path / "s"), rows=40_000, end=END)
    assert 30_000 <= small.metric_rows <= 55_000
    assert small.subscriptions == demo.DEFAULT_SUBSCRIPTIONS and small.end == END
    large = demo.seed(Store(tmp_path / "l"), Settings(data_dir=tmp_path / "l"), rows=150_000, days=1, end=END)
    assert 120_000 <= large.metric_rows <= 180_000
    assert large.subscriptions > demo.DEFAULT_SUBSCRIPTIONS
    assert large.start == END - timedelta(days=1)


def test_summary_counts_what_was_written(tmp_path):
    store = Store(tmp_path)
    summary = demo.seed(store, Settings(data_dir=tmp_path), days=0.1, end=END)
    assert summary.metric_rows == store.row_count("customMetrics") > 0
    assert summary.request_rows == store.row_count("requests") > 0
    assert summary.start == END - timedelta(minutes=144)
    assert summary.apis == len(demo.APIS) or summary.apis >= 3


def test_seed_if_empty_seeds_once(tmp_path):
    store, settings = Store(tmp_path), Settings(data_dir=tmp_path)
    first = demo.seed_if_empty(store, settings, days=0.05, end=END)
    assert first is not None and first.metric_rows == store.row_count("customMetrics")
    assert demo.seed_if_empty(store, settings, days=0.05, end=END) is None
    assert store.row_count("customMetrics") == first.metric_rows


@pytest.mark.parametrize("bad", [{"days": 0}, {"days": -1}, {"rows": 0}])
def test_bad_sizes_are_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        demo.seed(Store(tmp_path), Settings(data_dir=tmp_path), **bad)
    assert Store(tmp_path).is_empty()


def test_every_forwarded_call_has_one_backend_call_with_its_operation_id(demo_rows):
    requests, dependencies = demo_rows.requests, demo_rows.dependencies
    assert dependencies["operation_Id"].is_unique and requests["operation_Id"].is_unique
    joined = requests.merge(dependencies, on="operation_Id", how="left", suffixes=("", "_backend"))
    forwarded = joined["resultCode_backend"].notna()
    # 200s and 500s were forwarded; the backend answered them as the gateway did.
    assert forwarded[joined["resultCode"].isin(["200", "500"])].all()
    assert (joined.loc[forwarded, "resultCode"] == joined.loc[forwarded, "resultCode_backend"]).all()
    assert not forwarded[joined["resultCode"] == "401"].any()
    # A backend call starts after its request and within it; sampled rows keep their itemCount.
    fwd = joined[forwarded]
    assert (fwd["timestamp_backend"] > fwd["timestamp"]).all()
    assert (fwd["itemCount"] == fwd["itemCount_backend"]).all()


def test_demo_traffic_holds_each_refusal_cause(seeded_backend, demo_end):
    bound = seeded_backend.bind(
        "limit_hit_causes", {"start_time": demo_end - timedelta(days=3), "end_time": demo_end}, now=demo_end
    )
    causes = seeded_backend.run_query(bound).frame
    totals = causes[["gateway_429", "backend_429", "quota_403", "other_403", "unattributed"]].sum()
    assert totals["gateway_429"] > 1000 and totals["quota_403"] > 50
    assert totals["backend_429"] > 10 and totals["other_403"] > 10
    assert totals["unattributed"] == 0 and set(causes["backend_logged"]) == {True}
    quota = causes.groupby("subscription")["quota_403"].sum()
    assert set(quota[quota > 0].index) == {demo.QUOTA_TENANT}


def test_clients_that_honour_retry_after_send_nothing_more_in_that_minute(tables, demo_settings):
    _, requests = tables
    gateway = requests[(requests["resultCode"] == "429") & ~requests["forwarded"]]
    per_minute = gateway.groupby(["subscription", "minute"]).size()
    most = per_minute.groupby(level=0).max()
    patient = [
        n for n, honours in zip(demo.subscription_names(), _backs_off(demo_settings), strict=True) if honours
    ]
    assert patient and all(most.get(name, 0) <= 1 for name in patient)
    assert most.max() > 5  # the others keep calling


def _backs_off(settings):
    return demo._tenants(settings, 7, demo.DEFAULT_SUBSCRIPTIONS).backs_off
