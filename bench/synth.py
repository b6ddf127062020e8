"""A fast synthetic busy gateway for the benchmarks (numpy, one segment per day).

50 subscriptions x 5 APIs x 3 metric names, pre-aggregated per minute, as
``llm-emit-token-metric`` writes them: customDimensions carries the configured
dimension names plus APIM's own keys (Region, Service ID, ...), which the
queries must ignore. A (subscription, API) pair is active in a minute with a
probability skewed by subscription, so the row count is whatever ``rows`` asks.
``requests`` gets one row per ten metric rows (sampled: itemCount > 1), with
429 and 403 answers concentrated on the busiest subscriptions, each with an
``operation_Id``; ``dependencies`` one row per call forwarded to the backend (same
``operation_Id``): every 200 and 500, and the 429s the deployment itself answered (one in
five), none for the gateway's own 429s and the quota's 403s.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from tokenboard import appinsights
from tokenboard.config import Settings
from tokenboard.store import Store

SUBSCRIPTIONS = (*(f"sub-{i:02d}" for i in range(48)), "équipe-données", "")
APIS = ("chat", "responses", "embeddings", "anthropic-messages", "batch")
MODELS = ("gpt-4o-mini", "Phi-4-mini-instruct", "claude-sonnet")
APIM_KEYS = appinsights.apim_keys(
    "West Europe",
    "/subscriptions/0000/resourceGroups/rg-ai/providers/Microsoft.ApiManagement/service/apim",
    "apim-ai.azure-api.net",
)
MINUTES_PER_DAY = 1440


def seed(
    store: Store, settings: Settings, *, rows: int, days: int = 30, end: datetime | None = None, seed: int = 7
) -> int:
    """Append about ``rows`` customMetrics rows (and rows/10 requests) ending at ``end``."""
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(second=0, microsecond=0, tzinfo=None)
    combos = len(SUBSCRIPTIONS) * len(APIS)
    names = settings.telemetry
    metrics = (names.total_metric, names.prompt_metric, names.completion_metric)
    days = max(days, math.ceil(rows / (len(metrics) * combos * MINUTES_PER_DAY)))
    weights = 1.0 / np.arange(1, len(SUBSCRIPTIONS) + 1) ** 0.8  # a few heavy users
    metric_dims = _metric_dimensions(settings)
    request_dims = _request_dimensions(settings)
    written = 0
    start = end - timedelta(days=days)
    for day in range(days):
        day_start = start + timedelta(days=day)
        target = rows * (day + 1) // days - written
        metric_table = _metric_day(rng, day_start, target, metrics, weights, metric_dims)
        store.append("customMetrics", metric_table)
        requests = _request_day(rng, day_start, max(target // 10, 1), weights, request_dims)
        store.append("requests", requests)
        store.append("dependencies", _dependency_day(rng, requests))
        written += metric_table.num_rows
    return written


def _metric_dimensions(settings: Settings) -> pa.Array:
    texts = [
        appinsights.metric_dimensions(settings.telemetry, sub, api, model, APIM_KEYS)
        for sub in SUBSCRIPTIONS for api in APIS for model in MODELS
    ]  # fmt: skip
    return pa.array(texts, pa.string())


def _request_dimensions(settings: Settings) -> pa.Array:
    extra = {"Operation Name": "create-completion", "Product Name": "ai-starter", "Region": "West Europe"}
    texts = [
        appinsights.request_dimensions(settings.telemetry, sub, api, extra)
        for sub in SUBSCRIPTIONS for api in APIS
    ]  # fmt: skip
    return pa.array(texts, pa.string())


def _metric_day(rng, day_start: datetime, target: int, metrics, weights, dims: pa.Array) -> pa.Table:
    n_sub, n_api = len(SUBSCRIPTIONS), len(APIS)
    slots = n_sub * n_api * MINUTES_PER_DAY
    picks = max(min(target // len(metrics), slots), 1)
    # Weighted sampling without replacement (Efraimidis-Spirakis): top keys u ** (1 / w).
    slot_weight = np.repeat(np.repeat(weights, n_api), MINUTES_PER_DAY)
    keys = rng.random(slots) ** (1.0 / slot_weight)
    chosen = np.sort(np.argpartition(keys, -picks)[-picks:])
    combo, minute = np.divmod(chosen, MINUTES_PER_DAY)
    sub, api = np.divmod(combo, n_api)
    model = rng.integers(0, len(MODELS), picks)
    calls = rng.integers(1, 30, picks).astype(np.int32)
    total = np.round(rng.lognormal(6.5, 0.8, picks) * calls * (0.5 + 2 * weights[sub]))
    prompt = np.round(total * rng.uniform(0.55, 0.85, picks))
    m = len(metrics)
    value_sum = np.stack([total, prompt, total - prompt], axis=1).reshape(-1)
    value_count = np.repeat(calls, m)
    mean = value_sum / value_count
    base = np.datetime64(day_start, "us")
    ts = np.repeat(base + minute.astype("timedelta64[m]"), m)
    dim_index = np.repeat((sub * n_api + api) * len(MODELS) + model, m)
    names = pa.array(list(metrics), pa.string()).take(pa.array(np.tile(np.arange(m), picks)))
    return appinsights.table(
        "customMetrics",
        {
            "timestamp": pa.array(ts, pa.timestamp("us")),
            "name": names,
            "value": mean,
            "valueSum": value_sum,
            "valueCount": value_count,
            "valueMin": np.floor(mean * 0.5),
            "valueMax": np.ceil(mean * 1.5),
            "valueStdDev": mean * 0.2,
            "customDimensions": dims.take(pa.array(dim_index)),
            "operation_Name": pa.array(["POST /ai/chat/completions"] * (picks * m), pa.string()),
            "cloud_RoleName": pa.array(["apim-ai West Europe"] * (picks * m), pa.string()),
            "itemCount": np.ones(picks * m, np.int32),
        },
    )


def _request_day(rng, day_start: datetime, n: int, weights, dims: pa.Array) -> pa.Table:
    n_api = len(APIS)
    sub = rng.choice(len(SUBSCRIPTIONS), n, p=weights / weights.sum())
    api = rng.integers(0, n_api, n)
    heavy = weights[sub] / weights.max()
    roll = rng.random(n)
    code = np.where(roll < 0.08 * heavy, "429", np.where(roll > 1 - 0.004 * heavy, "403", "200"))
    code = np.where((code == "200") & (rng.random(n) < 0.002), "500", code)
    seconds = np.sort(rng.integers(0, 86400, n))
    base = np.datetime64(day_start, "us")
    ts = base + (seconds * 1_000_000 + rng.integers(0, 1_000_000, n)).astype("timedelta64[us]")
    return appinsights.table(
        "requests",
        {
            "timestamp": pa.array(ts, pa.timestamp("us")),
            "id": pa.array([f"{i:016x}" for i in rng.integers(0, 2**62, n)], pa.string()),
            "name": pa.array(["POST /ai/chat/completions"] * n, pa.string()),
            "url": pa.array(["https://apim-ai.azure-api.net/ai/chat/completions"] * n, pa.string()),
            "resultCode": pa.array(code, pa.string()),
            "success": pa.array(np.char.startswith(code.astype(str), "2")),
            "duration": rng.gamma(2.0, 400.0, n),
            "customDimensions": dims.take(pa.array(sub * n_api + api)),
            "operation_Name": pa.array(["POST /ai/chat/completions"] * n, pa.string()),
            "cloud_RoleName": pa.array(["apim-ai West Europe"] * n, pa.string()),
            "itemCount": rng.integers(1, 6, n).astype(np.int32),
            "operation_Id": pa.array([f"{i:032x}" for i in rng.integers(0, 2**62, n)], pa.string()),
        },
    )


def _dependency_day(rng, requests: pa.Table) -> pa.Table:
    """A backend call for each forwarded request: 200s, 500s and a fifth of the 429s."""
    code = requests.column("resultCode").to_numpy(zero_copy_only=False)
    forwarded = (code != "429") & (code != "403") | (code == "429") & (rng.random(len(code)) < 0.2)
    picked = requests.filter(pa.array(forwarded))
    n = picked.num_rows
    codes = picked.column("resultCode")
    return appinsights.table(
        "dependencies",
        {
            "timestamp": picked.column("timestamp"),
            "id": pa.array([f"{i:016x}" for i in rng.integers(0, 2**62, n)], pa.string()),
            "target": pa.array(["aoai-swedencentral.openai.azure.com"] * n, pa.string()),
            "type": pa.array(["HTTP"] * n, pa.string()),
            "name": pa.array(["POST /openai/deployments/chat/completions"] * n, pa.string()),
            "data": pa.array(
                ["https://aoai-swedencentral.openai.azure.com/openai/deployments"] * n, pa.string()
            ),
            "success": picked.column("success"),
            "resultCode": codes,
            "duration": rng.gamma(2.0, 380.0, n),
            "customDimensions": pa.nulls(n, pa.string()),
            "operation_Id": picked.column("operation_Id"),
            "operation_Name": picked.column("operation_Name"),
            "cloud_RoleName": pa.array(["apim-ai West Europe"] * n, pa.string()),
            "itemCount": picked.column("itemCount"),
        },
    )
