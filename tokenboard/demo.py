"""Demo traffic: realistic, reproducible telemetry for the local store.

What an APIM AI gateway with ``llm-token-limit`` and ``llm-emit-token-metric`` writes to
Application Insights, simulated call by call and then aggregated the way the real
pipeline does it:

- tenants (subscriptions) with office hours in their own time zone, quiet weekends, a
  few batch jobs at night, heavy and light users, and bursts that run into their
  tokens-per-minute limit;
- within each minute calls are admitted in arrival order until the tenant's counter
  would pass its limit; later calls get 429. So the minutes with 429s are exactly the
  minutes in which the tenant's admitted tokens sit just under its limit;
- one trial tenant has a daily token quota and gets 403 once it is spent;
- a model deployment has its own tokens-per-minute limit (``DEPLOYMENT_TOKENS_PER_MINUTE``),
  shared by every tenant: calls the gateway let through get the backend's 429 when it is full
  (a ``dependencies`` row answering 429), and a few calls fail the content-safety check (403);
- every call the gateway forwards has a ``dependencies`` row with the request's ``operation_Id``;
  refusals carry the logged body and 429s the Retry-After they answered (``Response-*`` keys);
- some throttled clients honour Retry-After (nothing more in that minute after a 429), the
  others keep calling until the window reopens;
- ``customMetrics`` rows are pre-aggregated like the SDK sends them: one row per minute
  per dimension combination per metric name, with consistent sum/count/min/max/stddev,
  including overlapping categories the dashboard does not know (cached, reasoning);
- ``requests`` rows are one per call, except for two high-volume tenants whose
  successful calls are sampled (``itemCount`` > 1), plus 401 and 500 noise.

Everything is vectorised with numpy and written as one store segment per UTC day.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from tokenboard import appinsights, refusals
from tokenboard.appinsights import CACHED_METRIC as CACHED_METRIC
from tokenboard.appinsights import REASONING_METRIC as REASONING_METRIC
from tokenboard.config import Settings
from tokenboard.export import json_text
from tokenboard.store import Store

DEFAULT_SUBSCRIPTIONS = 24
ANONYMOUS = ""  # an API open without a subscription: the dimension value is empty
QUOTA_TENANT = "northwind-trial"
SAMPLED_EVERY = 5  # sampled tenants keep one requests row per this many successful calls
# Model deployments with their own tokens-per-minute limit, shared by every tenant that uses them.
DEPLOYMENT_TOKENS_PER_MINUTE = {"gpt-4.1": 10_000}
CONTENT_SAFETY_RATE = 0.0008  # of chat-style calls blocked by llm-content-safety
BACKEND_HOST = "aif-tokenboard-demo.openai.azure.com"

# Named tenants, heaviest first in spirit; the odd ones test escaping and unicode.
SUBSCRIPTION_NAMES = (
    "contoso-prod",
    "fabrikam-prod",
    "woodgrove-bank-prod",
    "adventureworks-web",
    "tailspin-support",
    "wingtip-batch",
    "litware-research",
    "proseware-chatbot",
    "müller-ağ-東京",
    QUOTA_TENANT,
    "contoso-dev",
    "fabrikam-dev",
    "fourthcoffee-ops",
    "alpine-ski-house",
    "margies-travel",
    "wideworld-importers",
    "relecloud-dev",
    "datum-labs",
    "lucerne-publishing",
    "treyresearch-eval",
    "coho-winery",
    "humongous-insurance",
    'o\'brien "quoted" team',
    ANONYMOUS,
)


@dataclass(frozen=True)
class Api:
    """One API behind the gateway: what it answers and how its calls look."""

    id: str
    path: str
    operation: str
    models: tuple[str, ...]
    prompt_share: float  # of a call's tokens
    latency_ms_per_token: float
    emits_model: bool = True  # the old API's policy has no Model dimension


APIS = (
    Api("chat", "/ai/chat/completions", "Creates a model response for the given chat conversation",
        ("gpt-4o-mini", "gpt-4.1", "Phi-4-mini-instruct", "prod-4o-mini"), 0.72, 9.0),
    Api("responses", "/ai/responses", "Creates a model response",
        ("gpt-4.1", "o4-mini", "gpt-5-mini"), 0.6, 12.0),
    Api("messages", "/anthropic/v1/messages", "Create a Message",
        ("claude-sonnet-4",), 0.65, 11.0),
    Api("embeddings", "/ai/embeddings", "Creates an embedding vector representing the input text",
        ("text-embedding-3-small",), 1.0, 0.15),
    Api("completions-v1", "/legacy/completions", "Creates a completion for the provided prompt",
        ("gpt-35-turbo-instruct",), 0.5, 8.0, emits_model=False),
)  # fmt: skip
REASONING_MODELS = frozenset({"o4-mini", "gpt-5-mini"})
CACHING_APIS = frozenset({"chat", "responses", "messages"})
TIMEZONES = (-8.0, -5.0, 0.0, 1.0, 1.0, 2.0, 5.5, 9.0)
PRODUCTS = ("ai-gold", "ai-silver", "ai-trial")

# What APIM puts beside the team's own dimensions; the dashboard must ignore them.
APIM_KEYS = appinsights.apim_keys("West Europe", "apim-tokenboard-demo", "apim-tokenboard-demo.azure-api.net")
ROLE_NAME = "apim-tokenboard-demo West Europe"
GATEWAY_URL = "https://apim-tokenboard-demo.azure-api.net"


@dataclass(frozen=True)
class SeedSummary:
    """What ``seed`` wrote, for the CLI and the first-start message."""

    metric_rows: int
    request_rows: int
    dependency_rows: int
    subscriptions: int
    apis: int
    models: int
    start: datetime
    end: datetime
    seconds: float


@dataclass(frozen=True)
class _Tenants:
    """Per-tenant traffic parameters (arrays indexed by tenant)."""

    names: list[str]
    limit: np.ndarray  # tokens per minute
    peak_calls: np.ndarray  # expected calls per minute at the office-hours peak
    tokens_per_call: np.ndarray  # mean prompt + completion tokens
    tz: np.ndarray  # hours east of UTC
    weekend: np.ndarray  # weekend factor
    batch: np.ndarray  # bool: flat night-time batch profile
    bursts_per_day: np.ndarray
    sampled: np.ndarray  # bool: successful requests sampled
    backs_off: np.ndarray  # bool: sends nothing more in a minute once it got a 429
    product: list[str]
    # Dimension combinations: combo_* arrays are indexed by combination.
    combo_tenant: np.ndarray
    combo_api: np.ndarray  # index into APIS
    combo_model: list[str]
    combo_weight: np.ndarray  # cumulative weights per tenant, padded (T, C)
    combo_offset: np.ndarray  # first combination of each tenant


def seed(
    store: Store,
    settings: Settings,
    *,
    days: float = 30,
    seed: int = 7,
    end: datetime | None = None,
    rows: int | None = None,
) -> SeedSummary:
    """Write demo traffic for ``days`` up to ``end`` (default: now) into ``store``.

    The same ``seed``, ``end`` and settings give the same rows. ``rows`` asks for about
    that many ``customMetrics`` rows, reached by choosing how many subscriptions
    (and, for small targets, how many days) the traffic covers.
    """
    return _write(store, settings, days, seed, end, rows)


def _write(
    store: Store, settings: Settings, days: float, random_seed: int, end: datetime | None, rows: int | None
) -> SeedSummary:
    began = time.perf_counter()
    if days <= 0:
        raise ValueError("days must be positive")
    end = _floor_minute(end or datetime.now(UTC))
    count = DEFAULT_SUBSCRIPTIONS
    if rows is not None:
        if rows <= 0:
            raise ValueError("rows must be positive")
        count, days = _scale(settings, random_seed, rows, days)
    start = end - timedelta(minutes=max(1, round(days * 1440)))
    tenants = _tenants(settings, random_seed, count)
    written = dict.fromkeys(("customMetrics", "requests", "dependencies"), 0)
    for day_start, day_end in _days(start, end):
        tables = _simulate_day(settings, tenants, random_seed, day_start, day_end)
        for name, table in zip(written, tables, strict=True):
            store.append(name, table)
            written[name] += table.num_rows
    return SeedSummary(
        metric_rows=written["customMetrics"],
        request_rows=written["requests"],
        dependency_rows=written["dependencies"],
        subscriptions=len(tenants.names),
        apis=len({int(a) for a in tenants.combo_api}),
        models=len(set(tenants.combo_model)),
        start=start,
        end=end,
        seconds=time.perf_counter() - began,
    )


def seed_if_empty(
    store: Store,
    settings: Settings,
    *,
    days: float = 30,
    seed: int = 7,
    end: datetime | None = None,
    rows: int | None = None,
) -> SeedSummary | None:
    """Seed demo traffic on a dashboard's first start; None when the store has data."""
    if not store.is_empty():
        return None
    return _write(store, settings, days, seed, end, rows)


def subscription_names(count: int = DEFAULT_SUBSCRIPTIONS) -> list[str]:
    """The tenants' names: the named ones first, then numbered copies of them."""
    names = list(SUBSCRIPTION_NAMES[:count])
    plain = [n for n in SUBSCRIPTION_NAMES if n not in (ANONYMOUS, QUOTA_TENANT)]
    i = 0
    while len(names) < count:
        names.append(f"{plain[i % len(plain)]}-{i // len(plain) + 2:03d}")
        i += 1
    return names


# --- tenants --------------------------------------------------------------------------


def _tenants(settings: Settings, seed: int, count: int) -> _Tenants:
    """Draw each tenant from its own random stream, so the first n of a larger set are
    the same n tenants (which lets ``rows=`` pick a count from expected sizes)."""
    names = subscription_names(count)
    columns: dict[str, list[Any]] = {
        key: [] for key in ("peak", "per_call", "tz", "weekend", "batch", "bursts")
    }
    combo_tenant, combo_api, combo_model, weights = [], [], [], []
    for t, name in enumerate(names):
        rng = np.random.default_rng([seed, 1, t])
        limit = settings.limits.for_subscription(name)
        tier = _tier(t, name)
        if tier == 0:  # heavy: peaks at 30-55 % of its limit, so a 2-4.5x burst crosses it
            peak = rng.uniform(4, 10)
            per_call = rng.uniform(0.3, 0.55) * limit / peak
        else:
            peak = rng.uniform(0.6, 2.0) if tier == 1 else rng.uniform(0.03, 0.4)
            per_call = rng.uniform(250, 1800)
        columns["peak"].append(peak)
        columns["per_call"].append(min(max(per_call, 60.0), 0.08 * limit))
        columns["tz"].append(rng.choice(TIMEZONES))
        columns["weekend"].append(rng.uniform(0.08, 0.3))
        steady = name == QUOTA_TENANT  # its limit is the daily quota: no bursts, no batch
        columns["batch"].append(not steady and ("batch" in name or rng.random() < 0.08))
        columns["bursts"].append(0.0 if steady else (rng.uniform(1.0, 2.5), 0.3, 0.0)[tier])
        k = 1 + min(3, rng.poisson(1.2 if tier < 2 else 0.4))
        for a in rng.choice(len(APIS), size=k, replace=False, p=[0.45, 0.2, 0.12, 0.15, 0.08]):
            models = APIS[a].models
            for model in rng.choice(models, size=min(len(models), 1 + rng.poisson(0.4)), replace=False):
                combo_tenant.append(t)
                combo_api.append(int(a))
                combo_model.append(str(model))
                weights.append(rng.pareto(1.5) + 0.2)
    combo_tenant_arr = np.array(combo_tenant)
    weights_arr = np.array(weights)
    cumulative = np.ones((len(names), int(np.bincount(combo_tenant_arr).max())))
    offset = np.zeros(len(names), dtype=np.int64)
    for t in range(len(names)):
        idx = np.flatnonzero(combo_tenant_arr == t)
        offset[t] = idx[0]
        cumulative[t, : len(idx)] = np.cumsum(weights_arr[idx]) / weights_arr[idx].sum()
        cumulative[t, len(idx) - 1 :] = 1.0
    tiers = [_tier(t, name) for t, name in enumerate(names)]
    return _Tenants(
        names=names,
        limit=np.array([settings.limits.for_subscription(name) for name in names], dtype=np.float64),
        peak_calls=np.array(columns["peak"]),
        tokens_per_call=np.array(columns["per_call"]),
        tz=np.array(columns["tz"]),
        weekend=np.array(columns["weekend"]),
        batch=np.array(columns["batch"], dtype=bool),
        bursts_per_day=np.array(columns["bursts"]),
        sampled=np.array([t in (0, 1) for t in range(len(names))]),  # the two heaviest
        backs_off=np.array([tier == 0 and t % 2 == 1 for t, tier in enumerate(tiers)]),
        product=[PRODUCTS[tier] for tier in tiers],
        combo_tenant=combo_tenant_arr,
        combo_api=np.array(combo_api),
        combo_model=combo_model,
        combo_weight=cumulative,
        combo_offset=offset,
    )


def _tier(index: int, name: str) -> int:
    """0 heavy, 1 medium, 2 light: the first four are heavy, then a repeating mix."""
    if name in (QUOTA_TENANT, ANONYMOUS):
        return 1
    return 0 if index < 4 else (1 if index % 3 == 0 else 2)


def _profile(tenants: _Tenants, minutes: np.ndarray) -> np.ndarray:
    """Relative call rate (0..~1) of each tenant at each absolute minute: shape (T, M)."""
    utc_hours = (minutes % 1440) / 60.0
    utc_day = minutes // 1440  # days since the epoch (a Thursday)
    local = utc_hours[None, :] + tenants.tz[:, None]
    day = utc_day[None, :] + np.floor(local / 24.0)
    hours = np.mod(local, 24.0)
    weekday = np.mod(day + 3, 7)  # 0 = Monday
    office = _sigmoid((hours - 8.5) * 2.0) * _sigmoid((18.0 - hours) * 1.5)
    office = office * (1 - 0.25 * np.exp(-(((hours - 12.5) / 0.6) ** 2)))
    shape = 0.04 + office
    night = np.exp(-(((hours - 2.5) / 1.2) ** 2))
    shape = np.where(tenants.batch[:, None], 0.15 + 0.85 * night, shape)
    weekend = np.where(weekday >= 5, tenants.weekend[:, None], 1.0)
    profile: np.ndarray = shape * np.where(tenants.batch[:, None], 1.0, weekend)
    return profile


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


# --- one day --------------------------------------------------------------------------


# Why a refused call was refused (forwarded: it reached the backend, whatever it answered).
_FORWARDED, _THROTTLED, _QUOTA, _BLOCKED = range(4)


def _simulate_day(
    settings: Settings, tenants: _Tenants, seed: int, day_start: datetime, day_end: datetime
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """All calls of one UTC day (or part of one), as customMetrics, requests and dependencies rows."""
    first = _epoch_minute(day_start)
    minutes = np.arange(first, _epoch_minute(day_end), dtype=np.int64)
    rng = np.random.default_rng([seed, 2, first])
    n_tenants, n_minutes = len(tenants.names), len(minutes)

    # Call rate per tenant-minute: profile x day-to-day mood x minute noise x bursts.
    rate = tenants.peak_calls[:, None] * _profile(tenants, minutes)
    rate *= rng.lognormal(0.0, 0.25, n_tenants)[:, None]
    rate *= rng.gamma(4.0, 0.25, (n_tenants, n_minutes))
    for t in np.flatnonzero(tenants.bursts_per_day > 0):
        weights = rate[t] / rate[t].sum()
        for _ in range(rng.poisson(tenants.bursts_per_day[t] * n_minutes / 1440)):
            at = rng.choice(n_minutes, p=weights)
            length = int(rng.integers(3, 25))
            burst = tenants.peak_calls[t] * rng.uniform(2.0, 4.5)
            rate[t, at : at + length] = np.maximum(rate[t, at : at + length], burst)
    counts = rng.poisson(rate)

    # One entry per call, ordered by tenant, minute and arrival second.
    flat = counts.ravel()
    call_cell = np.repeat(np.arange(flat.size), flat)
    tenant = call_cell // n_minutes
    minute = call_cell % n_minutes
    n_calls = tenant.size
    micros = rng.integers(0, 60_000_000, n_calls)
    order = np.lexsort((micros, minute, tenant))
    tenant, minute, micros = tenant[order], minute[order], micros[order]

    # Which API/model each call goes to, and its tokens.
    u = rng.random(n_calls)
    pick = (u[:, None] > tenants.combo_weight[tenant]).sum(axis=1)
    combo = tenants.combo_offset[tenant] + pick
    api = tenants.combo_api[combo]
    share = np.array([a.prompt_share for a in APIS])[api]
    mean = tenants.tokens_per_call[tenant]
    prompt = rng.lognormal(np.log(mean * share), 0.55)
    completion = np.where(share < 1.0, rng.lognormal(np.log(mean * (1.0 - share) + 1e-9), 0.7), 0.0)
    cap = 0.15 * tenants.limit[tenant]  # no single call above 15 % of the limit
    scale = np.minimum(1.0, cap / (prompt + completion))
    prompt = np.maximum(1, np.floor(prompt * scale))
    completion = np.where(share < 1.0, np.maximum(1, np.floor(completion * scale)), 0.0)
    total = prompt + completion
    caching = np.isin(api, [i for i, a in enumerate(APIS) if a.id in CACHING_APIS])
    cached = np.where(
        caching & (rng.random(n_calls) < 0.35), np.floor(prompt * rng.uniform(0.2, 0.9, n_calls)), 0
    )
    reasoning_combo = np.array([m in REASONING_MODELS for m in tenants.combo_model])
    reasoning = np.where(reasoning_combo[combo], np.floor(completion * rng.uniform(0.3, 0.8, n_calls)), 0)

    # Admission: a backend error or a content-safety block consumes nothing; the rest count
    # against the minute's limit in arrival order, and every call after the counter would pass
    # it gets 429. Calls the gateway lets through then meet their deployment's own limit; a
    # call the backend refused consumes nothing either, so the gateway is decided again.
    server_error = rng.random(n_calls) < 0.003
    blocked = np.isin(api, [i for i, a in enumerate(APIS) if a.id in CACHING_APIS]) & (
        rng.random(n_calls) < CONTENT_SAFETY_RATE
    )
    consumed = np.where(server_error | blocked, 0.0, total)
    cell = tenant * n_minutes + minute
    throttled = _group_cumsum(consumed, cell) > tenants.limit[tenant]
    forwarded = ~(throttled | blocked | server_error)
    backend_refused = _deployment_refusals(tenants, combo, minute, micros, total, forwarded)
    consumed = np.where(backend_refused, 0.0, consumed)
    throttled = _group_cumsum(consumed, cell) > tenants.limit[tenant]
    quota_hit = np.zeros(n_calls, dtype=bool)
    if QUOTA_TENANT in tenants.names:
        q = tenants.names.index(QUOTA_TENANT)
        mine = np.flatnonzero(tenant == q)
        daily = 0.6 * tenants.tokens_per_call[q] * tenants.peak_calls[q] * 600  # ~ 60 % of a workday
        spent = np.cumsum(np.where(throttled[mine], 0.0, consumed[mine]))
        over = np.flatnonzero(spent > daily)
        if over.size:
            quota_hit[mine[over[0] :]] = True
    code = np.full(n_calls, 200, dtype=np.int16)
    code[server_error] = 500
    code[backend_refused] = 429
    code[blocked] = 403
    code[throttled] = 429
    code[quota_hit] = 403
    cause = np.full(n_calls, _FORWARDED, dtype=np.int8)
    cause[blocked] = _BLOCKED
    cause[throttled] = _THROTTLED
    cause[quota_hit] = _QUOTA

    # Clients that honour Retry-After send nothing more in a minute after its first 429, and
    # hold the next minute's first calls until the Retry-After (rounded up) has elapsed.
    gave_up = tenants.backs_off[tenant] & throttled & (_group_cumsum(throttled.astype(float), cell) > 1)
    keep = ~gave_up
    tenant, combo, minute, micros, code, cause = (
        a[keep] for a in (tenant, combo, minute, micros, code, cause)
    )
    total, completion, cell = total[keep], completion[keep], cell[keep]
    prompt, cached, reasoning = prompt[keep], cached[keep], reasoning[keep]
    told = np.flatnonzero(tenants.backs_off[tenant] & (cause == _THROTTLED))
    if told.size:
        left = 60_000_000 - micros[told]
        reopen = np.ceil(left / 1e6).astype(np.int64) * 1_000_000 - left  # into the next minute
        waiting = np.isin(cell, cell[told] + 1)
        at = np.searchsorted(cell[told] + 1, cell[waiting])
        jitter = rng.integers(1_000, 200_000, int(waiting.sum()))
        micros[waiting] = np.maximum(micros[waiting], reopen[at] + jitter)
    ok = code == 200

    metrics = _metric_rows(settings, tenants, minutes, combo[ok], minute[ok], total[ok], prompt[ok],
                           completion[ok], cached[ok], reasoning[ok])  # fmt: skip
    requests, dependencies = _request_rows(settings, tenants, rng, minutes, tenant, combo, minute, micros,
                                           code, cause, total, completion, cell)  # fmt: skip
    return metrics, requests, dependencies


def _deployment_refusals(
    tenants: _Tenants,
    combo: np.ndarray,
    minute: np.ndarray,
    micros: np.ndarray,
    total: np.ndarray,
    forwarded: np.ndarray,
) -> np.ndarray:
    """Forwarded calls a model deployment refuses: over its own tokens per minute, in arrival
    order across every tenant that uses it."""
    refused = np.zeros(total.size, dtype=bool)
    models = np.array(tenants.combo_model)[combo]
    for model, limit in DEPLOYMENT_TOKENS_PER_MINUTE.items():
        idx = np.flatnonzero(forwarded & (models == model))
        if idx.size == 0:
            continue
        idx = idx[np.lexsort((micros[idx], minute[idx]))]
        refused[idx] = _group_cumsum(total[idx], minute[idx]) > limit
    return refused


def _group_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each new ``group`` (groups are contiguous)."""
    running = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    before = np.repeat(running[starts] - values[starts], np.diff(np.r_[starts, values.size]))
    result: np.ndarray = running - before
    return result


def _metric_rows(
    settings: Settings,
    tenants: _Tenants,
    minutes: np.ndarray,
    combo: np.ndarray,
    minute: np.ndarray,
    total: np.ndarray,
    prompt: np.ndarray,
    completion: np.ndarray,
    cached: np.ndarray,
    reasoning: np.ndarray,
) -> pa.Table:
    """Pre-aggregate admitted calls: one row per minute, combination and metric name."""
    dims = pa.array([_metric_dimensions(settings, tenants, c) for c in range(len(tenants.combo_model))])
    ops = pa.array([APIS[a].id for a in tenants.combo_api])
    parts = []
    for name, values, keep in (
        (settings.telemetry.total_metric, total, None),
        (settings.telemetry.prompt_metric, prompt, None),
        (settings.telemetry.completion_metric, completion, None),
        (settings.telemetry.cached_metric, cached, cached > 0),
        (settings.telemetry.reasoning_metric, reasoning, reasoning > 0),
    ):
        if keep is not None:
            c, m, v = combo[keep], minute[keep], values[keep]
        else:
            c, m, v = combo, minute, values
        if v.size == 0:
            continue
        order = np.lexsort((c, m))
        c, m, v = c[order], m[order], v[order]
        starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (m[1:] != m[:-1])])
        count = np.diff(np.r_[starts, v.size])
        total_sum = np.add.reduceat(v, starts)
        squares = np.add.reduceat(v * v, starts)
        mean = total_sum / count
        std = np.sqrt(np.maximum(0.0, squares / count - mean * mean))
        group_combo = c[starts]
        stamp = (minutes[m[starts]] * 60_000_000).astype("datetime64[us]")
        parts.append(
            appinsights.table(
                "customMetrics",
                {
                    "timestamp": pa.array(stamp, pa.timestamp("us")),
                    "name": pa.array([name] * starts.size),
                    "value": total_sum,
                    "valueSum": total_sum,
                    "valueCount": count.astype(np.int32),
                    "valueMin": np.minimum.reduceat(v, starts),
                    "valueMax": np.maximum.reduceat(v, starts),
                    "valueStdDev": np.round(std, 6),
                    "customDimensions": dims.take(group_combo),
                    "operation_Name": ops.take(group_combo),
                    "cloud_RoleName": pa.array([ROLE_NAME] * starts.size),
                    "itemCount": np.ones(starts.size, dtype=np.int32),
                },
            )
        )
    if not parts:
        return appinsights.table("customMetrics", [])
    return pa.concat_tables(parts).sort_by([("timestamp", "ascending")])


def _metric_dimensions(settings: Settings, tenants: _Tenants, c: int) -> str:
    api = APIS[tenants.combo_api[c]]
    subscription = tenants.names[tenants.combo_tenant[c]]
    model = tenants.combo_model[c] if api.emits_model else None
    return appinsights.metric_dimensions(settings.telemetry, subscription, api.id, model, APIM_KEYS)


def _request_rows(
    settings: Settings,
    tenants: _Tenants,
    rng: np.random.Generator,
    minutes: np.ndarray,
    tenant: np.ndarray,
    combo: np.ndarray,
    minute: np.ndarray,
    micros: np.ndarray,
    code: np.ndarray,
    cause: np.ndarray,
    total: np.ndarray,
    completion: np.ndarray,
    cell: np.ndarray,
) -> tuple[pa.Table, pa.Table]:
    """One requests row per gateway call (sampled tenants: one per SAMPLED_EVERY successes) + 401s,
    and one dependencies row per forwarded call that kept its requests row."""
    api = tenants.combo_api[combo]
    per_token = np.array([a.latency_ms_per_token for a in APIS])[api]
    duration = np.where(
        code == 200,
        rng.lognormal(np.log(180.0), 0.3, code.size) + completion * per_token + total * 0.02,
        np.where(
            code == 500, rng.uniform(800, 30_000, code.size), rng.lognormal(np.log(4.0), 0.4, code.size)
        ),
    )
    item_count = np.ones(code.size, dtype=np.int32)
    sampled = tenants.sampled[tenant] & (code == 200)
    drop = np.zeros(code.size, dtype=bool)
    if sampled.any():
        # Keep every SAMPLED_EVERY-th success of a tenant-minute; it stands for the ones after it.
        idx = np.flatnonzero(sampled)
        rank = (_group_cumsum(np.ones(idx.size), cell[idx]) - 1).astype(np.int64)
        _, inverse, sizes = np.unique(cell[idx], return_inverse=True, return_counts=True)
        item_count[idx] = np.minimum(SAMPLED_EVERY, sizes[inverse] - rank).astype(np.int32)
        drop[idx[rank % SAMPLED_EVERY != 0]] = True
    keep = ~drop
    dims = pa.array([_request_dimensions(settings, tenants, c) for c in range(len(tenants.combo_model))])
    api_names = pa.array([f"POST {a.path}" for a in APIS])
    api_urls = pa.array([f"{GATEWAY_URL}{a.path}" for a in APIS])
    api_ops = pa.array([f"{a.id};rev=1 - {a.operation}" for a in APIS])

    # Missing or wrong subscription keys: a trickle of 401s with no subscription at all.
    n_401 = int(rng.poisson(30 * minutes.size / 1440))
    bad_api = rng.integers(0, len(APIS), n_401)
    bad_dims = pa.array([_request_dimensions(settings, None, a) for a in range(len(APIS))]).take(bad_api)

    stamp = minutes[minute[keep]] * 60_000_000 + micros[keep]
    stamps = np.concatenate(
        [stamp, rng.integers(minutes[0] * 60_000_000, (minutes[-1] + 1) * 60_000_000, n_401)]
    ).astype("datetime64[us]")
    codes = np.concatenate([code[keep], np.full(n_401, 401, dtype=np.int16)])
    all_api = np.concatenate([api[keep], bad_api])
    ids = rng.integers(0, 2**63 - 1, codes.size, dtype=np.int64)
    operations = _operation_ids(rng, codes.size)
    # Refusals carry what APIM logs of them: the body and, on 429, the Retry-After (the
    # minute's counter reopens at the next minute).
    retry_after = np.ceil((60_000_000 - micros[keep]) / 1e6).astype(np.int64)
    refused = np.flatnonzero(code[keep] >= 400)
    seconds_left = 86_400 - (stamp // 1_000_000) % 86_400  # until the daily quota renews
    facts = zip(
        *(a[refused].tolist() for a in (combo[keep], code[keep], cause[keep], retry_after, seconds_left)),
        strict=True,
    )
    texts: dict[tuple[int, ...], str] = {}
    refusal_dims = []
    for c, status, why, ra, left in facts:
        # Only a 429 names a Retry-After, and only the quota's message a time of its own.
        key = (c, status, why, ra if status == 429 else 0, left if why == _QUOTA else 0)
        if key not in texts:
            texts[key] = _refusal_dimensions(settings, tenants, *key)
        refusal_dims.append(texts[key])
    # One take over the per-combination texts followed by the refusals' own.
    index = combo[keep].astype(np.int64)
    index[refused] = len(dims) + np.arange(refused.size)
    request_dims = pa.concat_arrays([dims, pa.array(refusal_dims, pa.string())]).take(pa.array(index))
    requests = appinsights.table(
        "requests",
        {
            "timestamp": pa.array(stamps, pa.timestamp("us")),
            "id": pa.array(ids).cast(pa.string()),
            "name": api_names.take(all_api),
            "url": api_urls.take(all_api),
            "resultCode": pa.array(codes).cast(pa.string()),
            "success": codes < 400,
            "duration": np.round(np.concatenate([duration[keep], rng.uniform(1, 6, n_401)]), 3),
            "customDimensions": pa.concat_arrays([request_dims, bad_dims]),
            "operation_Name": api_ops.take(all_api),
            "cloud_RoleName": pa.array([ROLE_NAME] * codes.size),
            "itemCount": np.concatenate([item_count[keep], np.ones(n_401, dtype=np.int32)]),
            "operation_Id": operations,
        },
    )

    # The backend calls: each starts a few milliseconds into its request.
    fwd = np.flatnonzero(cause[keep] == _FORWARDED)
    deployments = sorted(set(tenants.combo_model))
    deployment = np.searchsorted(deployments, np.array(tenants.combo_model)[combo[keep][fwd]])
    paths = pa.array([f"/openai/deployments/{m}/chat/completions" for m in deployments])
    start_ms = rng.uniform(2.0, 12.0, fwd.size)
    dependencies = appinsights.table(
        "dependencies",
        {
            "timestamp": pa.array(
                (stamp[fwd] + (start_ms * 1000).astype(np.int64)).astype("datetime64[us]"), pa.timestamp("us")
            ),
            "id": pa.array(rng.integers(0, 2**63 - 1, fwd.size, dtype=np.int64)).cast(pa.string()),
            "target": pa.array([BACKEND_HOST] * fwd.size),
            "type": pa.array([appinsights.DEPENDENCY_TYPE] * fwd.size),
            "name": pa.array([f"POST {p}" for p in paths.to_pylist()]).take(deployment),
            "data": pa.array([f"https://{BACKEND_HOST}{p}" for p in paths.to_pylist()]).take(deployment),
            "success": code[keep][fwd] < 400,
            "resultCode": pa.array(code[keep][fwd]).cast(pa.string()),
            "duration": np.round(np.maximum(0.5, duration[keep][fwd] - start_ms - 1.0), 3),
            "customDimensions": pa.array(["{}"] * fwd.size),
            "operation_Id": operations.take(pa.array(fwd)),
            "operation_Name": api_ops.take(api[keep][fwd]),
            "cloud_RoleName": pa.array([ROLE_NAME] * fwd.size),
            "itemCount": item_count[keep][fwd],
        },
    )
    return requests.sort_by([("timestamp", "ascending")]), dependencies.sort_by([("timestamp", "ascending")])


def _operation_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """W3C trace ids (32 hex digits), as APIM's operation_Id."""
    raw = np.frombuffer(rng.bytes(16 * n).hex().encode(), dtype="S32")
    return pa.array(raw).cast(pa.string())


def _refusal_dimensions(
    settings: Settings, tenants: _Tenants, c: int, status: int, why: int, retry_after: int, seconds_left: int
) -> str:
    """A refused call's request dimensions: what APIM logs of the answer (body, Retry-After)."""
    if why == _THROTTLED:
        body = refusals.apim_body(429, refusals.token_limit_message(retry_after))
    elif why == _QUOTA:
        body = refusals.apim_body(403, refusals.quota_message(seconds_left))
    elif why == _BLOCKED:
        body = refusals.apim_body(403, refusals.CONTENT_SAFETY_MESSAGE)
    elif status == 429:
        body = refusals.backend_limit_body(retry_after)
    else:  # the backend's own error, passed through
        body = json_text(
            {"error": {"code": str(status), "message": "The server had an error processing your request."}}
        )
    logged = {settings.telemetry.response_body_key: body}
    if status == 429:
        logged[settings.telemetry.retry_after_key] = str(retry_after)
    return _request_dimensions(settings, tenants, c, logged)


def _request_dimensions(
    settings: Settings, tenants: _Tenants | None, c: int, logged: dict[str, str] | None = None
) -> str:
    """APIM's request dimensions; no subscription key when there is no subscription."""
    if tenants is None:  # 401: c is an API index
        api, name, product = APIS[c], ANONYMOUS, ""
    else:
        t = tenants.combo_tenant[c]
        api, name, product = APIS[tenants.combo_api[c]], tenants.names[t], tenants.product[t]
    extra = {"Operation Name": api.operation}
    if product:
        extra["Product Name"] = product
    extra |= {"Region": APIM_KEYS["Region"], "Service Name": APIM_KEYS["Service Name"], "API Revision": "1"}
    extra |= logged or {}
    return appinsights.request_dimensions(settings.telemetry, name, api.id, extra)


# --- time and scale -------------------------------------------------------------------


def _floor_minute(moment: datetime) -> datetime:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(second=0, microsecond=0)


def _epoch_minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def _days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights: one store segment per day."""
    cuts = [start]
    midnight = start.replace(hour=0, minute=0) + timedelta(days=1)
    while midnight < end:
        cuts.append(midnight)
        midnight += timedelta(days=1)
    cuts.append(end)
    return list(itertools.pairwise(cuts))


def _expected_rows(settings: Settings, seed: int, count: int) -> np.ndarray:
    """Expected customMetrics rows per day of each of ``count`` tenants, from call rates."""
    tenants = _tenants(settings, seed, count)
    week = np.arange(0, 7 * 1440, 5, dtype=np.int64) + 4 * 1440  # a Monday-to-Sunday week
    rate = tenants.peak_calls[:, None] * _profile(tenants, week)
    weights = np.diff(np.c_[np.zeros(len(tenants.names)), tenants.combo_weight], axis=1)
    expected = np.zeros(len(tenants.names))
    for c, model in enumerate(tenants.combo_model):
        t = tenants.combo_tenant[c]
        names = 3.0 + 0.5 * (APIS[tenants.combo_api[c]].id in CACHING_APIS) + (model in REASONING_MODELS)
        active = 1.0 - np.exp(-0.9 * rate[t] * weights[t, c - tenants.combo_offset[t]])
        expected[t] += float(active.mean()) * 1440 * names
    return expected


def _scale(settings: Settings, seed: int, rows: int, days: float) -> tuple[int, float]:
    """How many tenants and days give about ``rows`` rows: more tenants for large targets,
    fewer days (with the default tenants) for targets below the default traffic."""
    count = DEFAULT_SUBSCRIPTIONS
    per_day = _expected_rows(settings, seed, count)
    if per_day.sum() * days >= rows:
        return count, max(1 / 1440, rows / per_day.sum())
    while per_day.sum() * days < rows:
        count *= 2
        per_day = _expected_rows(settings, seed, count)
    return int(np.searchsorted(np.cumsum(per_day) * days, rows)) + 1, days
