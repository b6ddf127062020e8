"""Roll-ups answer exactly what raw rows answer, and live and die with their segments.

The reference is the per-row path: every dimension extracted per row by the shared
prelude, no roll-ups, and ``bin()`` as duckdb-kql translates it. The data is made to
trip a roll-up up: odd customDimensions (unicode, quotes, empty, missing keys, no
customDimensions at all, non-text values), metric names the dashboard does not know,
fractional and missing ``valueSum``, sampled requests, several rows and several
segments per minute and per hour, rows one microsecond either side of an hour, a
month boundary, and ranges that start and end on, beside and between buckets.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from tokenboard import appinsights, kql, localtime, recovery
from tokenboard import store as store_module
from tokenboard.backends import bins, hitcalls, local, rollups
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store, rolled_from

UNICODE = "müller-ağ-東京"
QUOTED = 'o\'brien "quoted" team'
DIMENSIONS = [
    {"Client Subscription": "contoso", "API ID": "chat", "Model": "gpt-4o-mini", "Region": "West Europe"},
    {"Client Subscription": "contoso", "API ID": "responses", "Model": "gpt-4o-mini"},
    {"Client Subscription": UNICODE, "API ID": "chat", "Model": "Phi-4-mini-instruct"},
    {"Client Subscription": QUOTED, "API ID": "responses", "Model": ""},
    {"Client Subscription": "", "API ID": "", "Model": ""},
    {"API ID": "chat"},
    {},
    None,
    {"Client Subscription": 42, "API ID": True, "Model": {"nested": [1, 2]}},
    {"Client Subscription": "tab\there\nnewline", "API ID": "back\\slash", "Model": "gpt-4o-mini"},
]
METRICS = ("Total Tokens", "Prompt Tokens", "Completion Tokens", "Prompt Cached Tokens", 'Réasoning "x"')
START = datetime(2026, 2, 27, 9, 0)  # the data: three days across the February -> March boundary
END = datetime(2026, 3, 2, 9, 0)
# Hour boundaries with a row 1 µs before, on and 1 µs after them.
EDGES = [datetime(2026, 2, 28, 7), datetime(2026, 3, 1, 0), datetime(2026, 3, 1, 19)]
US = timedelta(microseconds=1)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


# Ranges, by id; every query runs on each.
RANGES = {
    "unaligned": (datetime(2026, 2, 27, 10, 17, 23, 456789), datetime(2026, 3, 2, 5, 41, 7, 1)),
    "whole_days": (datetime(2026, 2, 28), datetime(2026, 3, 2)),
    "on_the_edges": (EDGES[0], EDGES[2]),
    "a_microsecond_past_the_edges": (EDGES[0] + US, EDGES[2] + US),
    "a_microsecond_before_the_edges": (EDGES[0] - US, EDGES[2] - US),
    "within_one_hour": (datetime(2026, 2, 28, 10, 5, 30), datetime(2026, 2, 28, 10, 50, 10)),
    "within_one_minute": (datetime(2026, 2, 28, 10, 5, 10), datetime(2026, 2, 28, 10, 5, 50)),
    "beyond_the_data": (datetime(2026, 2, 1), datetime(2026, 4, 1)),
    # From inside the busy minute: an edge minute with several rows of one subscription.
    "from_the_busy_minute": (datetime(2026, 2, 28, 10, 5, 10), datetime(2026, 3, 1, 12, 0, 30)),
}
# Extra parameters, by id; each runs on every query that declares them (with the "unaligned" range).
EXTRAS: dict[str, dict[str, Any]] = {
    "filters": {"subscriptions": [UNICODE, "", QUOTED], "apis": ["chat", ""], "models": ["gpt-4o-mini", ""]},
    "subscriptions_only": {"subscriptions": ["contoso", "42"]},
    "bin_1h": {"bin_size": timedelta(hours=1)},
    "bin_6h": {"bin_size": timedelta(hours=6)},
    "bin_1d": {"bin_size": timedelta(days=1)},
    "bin_5m": {"bin_size": timedelta(minutes=5)},
    "bin_90s": {"bin_size": timedelta(seconds=90)},
    "split_subscription": {"split_by": "subscription", "bin_size": timedelta(hours=3)},
    "split_api": {"split_by": "api", "bin_size": timedelta(hours=3)},
    "split_model": {"split_by": "model", "bin_size": timedelta(hours=3)},
    # Local bins (bin_phase, as tokenboard/localtime.py sets it): whole-hour zones read the
    # hour roll-up, Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45) the quarter-hour one.
    "kolkata_days": {"bin_phase": timedelta(hours=18, minutes=30)},
    "kathmandu_days": {"bin_phase": timedelta(hours=18, minutes=15)},
    "new_york_days": {"bin_phase": timedelta(hours=5)},
    "kolkata_1d": {"bin_size": timedelta(days=1), "bin_phase": timedelta(hours=18, minutes=30)},
    "kolkata_1h": {"bin_size": timedelta(hours=1), "bin_phase": timedelta(minutes=30)},
    "kolkata_30m_by_model": {
        "bin_size": timedelta(minutes=30),
        "bin_phase": timedelta(0),
        "split_by": "model",
    },
    "kathmandu_6h": {"bin_size": timedelta(hours=6), "bin_phase": timedelta(minutes=15)},
    "new_york_1d": {"bin_size": timedelta(days=1), "bin_phase": timedelta(hours=4)},
    "new_york_12h_by_api": {
        "bin_size": timedelta(hours=12),
        "bin_phase": timedelta(hours=5),
        "split_by": "api",
    },
    "what_if": {"candidate": 500, "refusal_budget": 0.1},
}


def _declares(name: str, params: dict) -> bool:
    return set(params) <= {p.name for p in kql.get_query(name).params}


RUNS = [(name, rng, "") for name in sorted(kql.catalog()) for rng in RANGES] + [
    (name, "unaligned", extra)
    for name in sorted(kql.catalog())
    for extra in EXTRAS
    if _declares(name, EXTRAS[extra])
]


@pytest.fixture(autouse=True)
def _roll_up_small_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """These stores are small; by default raw rows would answer them (rollups.MIN_ROWS)."""
    monkeypatch.setattr(rollups, "MIN_ROWS", dict.fromkeys(rollups.MIN_ROWS, 0))


def _metric_rows(rng: random.Random) -> list[dict]:
    times = [START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds())) for _ in range(2400)]
    times += [edge + d for edge in EDGES for d in (-US, timedelta(0), US)]
    times += [datetime(2026, 2, 28, 10, 5, 20)] * 6  # a busy minute
    rows = []
    for i, ts in enumerate(times):
        dims = DIMENSIONS[i % len(DIMENSIONS)]
        value = rng.choice([0.1 * rng.randint(1, 999), 1e-3, 12345.678, None]) if i % 17 else None
        row = {
            "timestamp": ts,
            "name": METRICS[rng.randrange(len(METRICS))] if i % 3 else "Total Tokens",
            "value": value,
            "valueSum": value,
            "valueCount": rng.randint(1, 9),
            "itemCount": rng.randint(1, 4),
        }
        rows.append(row | ({"customDimensions": dims} if dims is not None else {}))
    return rows


def _request_rows(rng: random.Random, metrics: list[dict]) -> list[dict]:
    """Random requests, and limit hits beside every fifth metric row (same time, same subscription)."""
    times = [START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds())) for _ in range(1500)]
    rows = []
    for i, ts in enumerate(times + [m["timestamp"] for m in metrics[::5]]):
        dims = DIMENSIONS[i % len(DIMENSIONS)]
        code = rng.choice(["200", "200", "429", "403", "500"] if i < len(times) else ["429", "403"])
        rows.append(
            {
                "timestamp": ts,
                "name": "POST /chat",
                "resultCode": code,
                "success": code == "200",
                "duration": rng.uniform(5, 900),
                "itemCount": rng.randint(1, 5),
            }
            | (
                {
                    "customDimensions": {
                        "Subscription Name": dims.get("Client Subscription", ""),
                        "API Name": "chat",
                    }
                }
                if dims is not None
                else {}
            )
        )
    return rows


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Three metric segments that overlap in time (so buckets span segments), one of requests."""
    store = Store(tmp_path_factory.mktemp("rollups") / "data")
    rng = random.Random(11)
    metrics = _metric_rows(rng)
    store.append("customMetrics", metrics[0::2])
    store.append("customMetrics", metrics[1::2])
    store.append("customMetrics", metrics[:40])  # the same rows again: sums double, as raw rows do
    store.append("requests", _request_rows(rng, metrics))
    return store


@pytest.fixture(scope="module")
def odd_settings(odd_store: Store) -> Settings:
    return Settings(data_dir=odd_store.data_dir, seed_on_start=False)


@pytest.fixture(scope="module")
def rolled(odd_settings: Settings, odd_store: Store) -> LocalBackend:
    return LocalBackend(odd_settings, odd_store)


@pytest.fixture(scope="module")
def per_row(odd_settings: Settings, odd_store: Store) -> LocalBackend:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "DISTINCT_LIMIT", 0)  # the shared prelude, per row
        backend = LocalBackend(odd_settings.replace(store={"rollups": False}))
        backend.refresh()
    return backend


def _run(backend: LocalBackend, name: str, params: dict[str, Any]) -> pd.DataFrame:
    return backend.run_query(backend.bind(name, params)).frame


def _params(name: str, rng: str, extra: str) -> dict[str, Any]:
    start, end = RANGES[rng]
    params = {"start_time": _utc(start), "end_time": _utc(end), **EXTRAS.get(extra, {})}
    return {k: v for k, v in params.items() if _declares(name, {k: v})}


def _per_row_frame(backend: LocalBackend, bound: kql.BoundQuery) -> pd.DataFrame:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bins, "rewrite", lambda sql: sql)  # bin() as duckdb-kql translates it
        return backend.run_query(bound).frame


def _assert_same(fast: pd.DataFrame, slow: pd.DataFrame, name: str) -> None:
    if name == "top_consumers":  # `top` orders by total tokens only: ties may come either way
        fast, slow = (
            f.sort_values(list(f.columns), kind="stable").reset_index(drop=True) for f in (fast, slow)
        )
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-12, obj=name)


@pytest.mark.parametrize(("name", "rng", "extra"), RUNS)
def test_roll_up_path_equals_per_row_path(
    name: str, rng: str, extra: str, rolled: LocalBackend, per_row: LocalBackend, caplog
) -> None:
    bound = rolled.bind(name, _params(name, rng, extra))
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        fast = rolled.run_query(bound).frame
    assert not caplog.records, caplog.text  # the roll-up was read, not given up on
    _assert_same(fast, _per_row_frame(per_row, bound), name)


def test_the_odd_data_reaches_every_query(rolled: LocalBackend) -> None:
    """Guards the comparisons above against comparing empty frames."""
    params = _params("usage_pivot", "unaligned", "")
    for name in sorted(kql.catalog()):
        frame = _run(rolled, name, {k: v for k, v in params.items() if _declares(name, {k: v})})
        assert not frame.empty, name
    # throttled_minutes finds admitted tokens in many hit minutes (and none in many others)
    throttled = _run(rolled, "throttled_minutes", params)
    assert (throttled["tokens"] > 0).sum() > 50 and (throttled["tokens"] == 0).sum() > 50


# --- the busiest minute of each hour, from segments that share no minute ------------------

# Split points inside hours, on minute boundaries: hours span segments, minutes do not.
SPLITS = (datetime(2026, 2, 28, 10, 37), datetime(2026, 3, 1, 19, 13))
PEAK_BINS = (timedelta(hours=1), timedelta(hours=6), timedelta(days=1))


def _rolled_and_per_row(store: Store) -> tuple[LocalBackend, LocalBackend]:
    """A backend with roll-ups on ``store``, and one on the per-row path (prelude per row)."""
    settings = Settings(data_dir=store.data_dir, seed_on_start=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "DISTINCT_LIMIT", 0)
        per_row = LocalBackend(settings.replace(store={"rollups": False}), store)
        per_row.refresh()
    return LocalBackend(settings, store), per_row


@pytest.fixture(scope="module")
def disjoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBackend, LocalBackend]:
    """The odd metric rows in three segments cut at SPLITS; roll-ups on, and the per-row path."""
    store = Store(tmp_path_factory.mktemp("disjoint") / "data")
    rows = sorted(_metric_rows(random.Random(11)), key=lambda r: r["timestamp"])
    cuts = [0, *(sum(r["timestamp"] < t for r in rows) for t in SPLITS), len(rows)]
    for start, stop in itertools.pairwise(cuts):
        store.append("customMetrics", rows[start:stop])
    return _rolled_and_per_row(store)


@pytest.mark.parametrize("size", PEAK_BINS, ids=str)
@pytest.mark.parametrize("rng", sorted(RANGES))
def test_busiest_minutes_of_hours_give_the_per_row_peaks(disjoint, rng: str, size: timedelta) -> None:
    rolled, per_row = disjoint
    bound = rolled.bind(
        "peak_tokens_over_time", {**_params("peak_tokens_over_time", rng, ""), "bin_size": size}
    )
    found = rollups.plans(bound.name, bound.values)
    if found and found[0].rollup is rollups.PEAK:
        assert rolled.reads(bound) == "peak roll-up"
    _assert_same(rolled.run_query(bound).frame, _per_row_frame(per_row, bound), bound.name)


def test_segments_sharing_a_minute_read_the_minute_roll_up(rolled: LocalBackend) -> None:
    bound = rolled.bind("peak_tokens_over_time", {**_params("peak_tokens_over_time", "unaligned", ""),
                                                  "bin_size": timedelta(hours=6)})  # fmt: skip
    assert rollups.plans(bound.name, bound.values)[0].rollup is rollups.PEAK
    assert rolled.reads(bound) == "minute roll-up"


# --- one row per minute: the per-minute summarize as a projection ----------------------------

MINUTE_QUERIES = sorted(
    n for n, uses in rollups.USES.items() if any(u.rollup is rollups.MINUTE for u in uses)
)
PER_MINUTE_RUNS = [(n, rng, "") for n in MINUTE_QUERIES for rng in RANGES] + [
    (n, "unaligned", extra) for n in MINUTE_QUERIES for extra in EXTRAS if _declares(n, EXTRAS[extra])
]


@pytest.mark.parametrize(("name", "rng", "extra"), PER_MINUTE_RUNS)
def test_segments_sharing_no_minute_sum_each_minute_once(disjoint, name: str, rng: str, extra: str) -> None:
    """The minute roll-up of segments cut on minutes has one row per minute and subscription;
    the edges' raw rows are summed per minute alike, and the per-minute summarize skipped."""
    rolled, per_row = disjoint
    bound = rolled.bind(name, _params(name, rng, extra))
    rewritten = []
    per_minute_sql = rollups.per_minute_sql

    def spy(sql: str) -> str:
        rewritten.append(per_minute_sql(sql) != sql)
        return per_minute_sql(sql)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollups, "per_minute_sql", spy)
        fast = rolled.run_query(bound).frame
    _assert_same(fast, _per_row_frame(per_row, bound), name)
    if rolled.reads(bound) == "minute roll-up" and name in ("peak_minute_tokens", "limit_plan"):
        assert rewritten == [True]


def test_the_per_minute_rewrite_needs_filters_on_token_metrics_alone() -> None:
    minute = bins.floor_sql('"timestamp"', 60_000_000)
    summarize = (
        f'SELECT "subscription" AS "subscription", {minute} AS "minute", coalesce(sum("valueSum"), 0) '
        f'AS "tokens" FROM _s2 GROUP BY "subscription", {minute})'
    )
    filters = 'WITH _s0 AS (SELECT * FROM "TokenMetrics"),\n     _s1 AS (SELECT * FROM _s0 WHERE x),\n'
    assert "GROUP BY" not in rollups.per_minute_sql(
        f"{filters}     _s2 AS (SELECT * FROM _s1 WHERE y),\n     _s3 AS ({summarize}"
    )
    for other in (
        '_s2 AS (SELECT "subscription", "timestamp", "valueSum" FROM _s1)',  # a projection
        "_s2 AS (SELECT * FROM _s1 UNION ALL SELECT * FROM _s1)",  # rows twice
        "x_s2 AS (SELECT * FROM _s1 WHERE y),\n     _s2 AS (SELECT * FROM _s1 LIMIT 5)",
    ):
        sql = f"{filters}     {other},\n     _s3 AS ({summarize}"
        assert rollups.per_minute_sql(sql) == sql, other
    over_requests = f'WITH _s0 AS (SELECT * FROM "GatewayRequests"),\n     _s2 AS ({summarize}'
    assert rollups.per_minute_sql(over_requests) == over_requests


def test_segments_sharing_a_minute_keep_the_per_minute_summarize(rolled: LocalBackend) -> None:
    bound = rolled.bind("peak_minute_tokens", _params("peak_minute_tokens", "unaligned", ""))
    assert rolled.reads(bound) == "minute roll-up"
    chosen = rolled._rollup_view(bound)
    assert chosen is not None and not chosen[0].one_per_minute


# --- limit_hit_causes on the backend calls of limit hits alone (hitcalls.py) -----------------

# An hour with one 429 and no backend call for it, and a 200 with one: backend calls were logged.
LOGGED_HOUR = datetime(2026, 3, 2, 7, 0)


def _calls_rows(settings: Settings, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Requests (limit hits among them, odd operation_Ids) and dependencies: some of limit hits,
    some of other calls, some outside any range, some without an operation_Id."""
    requests, dependencies = [], []
    for i in range(1500):
        ts = START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds() - 7200))
        op = rng.choice([f"op-{i}", f"op-{i}", f"op-{i}", "", None, f"op-{i % 7}"])
        code = rng.choice(["200", "429", "429", "403", "403", "500"])
        body = rng.choice([None, "", '{"statusCode": 429}', '{"error": {}}', "Token quota is exceeded"])
        dims = appinsights.request_dimensions(
            settings.telemetry, rng.choice(["contoso", UNICODE, ""]), rng.choice(["chat", ""]),
            {settings.telemetry.response_body_key: body} if body is not None else {},
        )  # fmt: skip
        requests.append(
            appinsights.request_row(timestamp=ts, result_code=code, operation_id=op, dimensions=dims)
        )
        for _ in range(rng.choice([0, 0, 1, 2])):
            shift = timedelta(seconds=rng.choice([0.0, 0.5, -3.0, 7200.0]))
            dependencies.append(appinsights.dependency_row(
                timestamp=ts + shift, result_code=rng.choice(["200", "429", "403"]),
                operation_id=rng.choice([op, op, op, "", None]),
            ))  # fmt: skip
    for minute, code in ((5, "429"), (6, "200")):
        ts = LOGGED_HOUR + timedelta(minutes=minute)
        requests.append(
            appinsights.request_row(timestamp=ts, result_code=code, operation_id=f"logged-{code}")
        )
    dependencies.append(appinsights.dependency_row(
        timestamp=LOGGED_HOUR + timedelta(minutes=6), result_code="200", operation_id="logged-200"
    ))  # fmt: skip
    return requests, dependencies


@pytest.fixture(scope="module")
def calls_backend(tmp_path_factory: pytest.TempPathFactory) -> LocalBackend:
    store = Store(tmp_path_factory.mktemp("calls") / "data")
    settings = Settings(data_dir=store.data_dir, seed_on_start=False)
    requests, dependencies = _calls_rows(settings, random.Random(5))
    for part in range(2):  # two segments each
        store.append("requests", requests[part::2])
        store.append("dependencies", dependencies[part::2])
    return LocalBackend(settings, store)


CALLS_RANGES = {**RANGES, "logged_hour": (LOGGED_HOUR, LOGGED_HOUR + timedelta(hours=1))}


@pytest.mark.parametrize("rng", sorted(CALLS_RANGES))
def test_limit_hit_causes_from_the_calls_of_limit_hits_alone(calls_backend: LocalBackend, rng: str) -> None:
    start, end = (_utc(t) for t in CALLS_RANGES[rng])
    bound = calls_backend.bind("limit_hit_causes", {"start_time": start, "end_time": end})
    assert hitcalls.view_sql(bound.name, bound.values, "d", "r") is not None
    narrowed = calls_backend.run_query(bound).frame
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hitcalls, "QUERIES", frozenset())
        whole = calls_backend.run_query(bound).frame
    _assert_same(narrowed, whole, bound.name)
    if rng == "logged_hour":  # the 429 was answered by the gateway: backend calls were logged
        assert narrowed[["gateway_429", "backend_logged"]].values.tolist() == [[1, True]]
    elif rng == "unaligned":  # every cause turns up
        assert (
            narrowed[["gateway_429", "backend_429", "quota_403", "other_403", "unattributed"]].sum() > 0
        ).all()


@pytest.mark.parametrize("name", sorted(kql.catalog()))
def test_every_query_file_says_whether_it_reads_a_roll_up(name: str) -> None:
    assert (name in rollups.USES) != (name in rollups.PER_ROW), (
        f"queries/{name}.kql: list it in rollups.USES (with what it needs) or rollups.PER_ROW"
    )


def test_a_month_range_reads_the_roll_ups_of_every_segment(rolled: LocalBackend, odd_store: Store) -> None:
    params = _params("usage_pivot", "unaligned", "")
    for name in ("usage_pivot", "peak_minute_tokens"):
        bound = rolled.bind(name, params)
        assert rolled.reads(bound) != "raw rows"
        rolled.run_query(bound)
    files = sorted(p.name for p in odd_store.rollup_dir("customMetrics").iterdir())
    stems = {p.name for p in odd_store.segment_paths("customMetrics")}
    assert {rolled_from(f) for f in files} == stems
    assert sum("@hour-" in f for f in files) == sum("@minute-" in f for f in files) == len(stems)


# --- when a roll-up is not used -------------------------------------------------------


def _plan(name: str, **params: Any):
    start, end = RANGES["unaligned"]
    values = kql.resolve(kql.get_query(name), {"start_time": _utc(start), "end_time": _utc(end), **params})
    found = rollups.plans(name, values)
    return found[0] if found else None


def test_filters_on_folded_dimensions_read_raw_rows() -> None:
    assert _plan("peak_minute_tokens").rollup is rollups.MINUTE
    assert _plan("peak_minute_tokens", subscriptions=["contoso"]) is not None
    assert _plan("peak_minute_tokens", apis=["chat"]) is None
    assert _plan("throttled_minutes", models=[""]) is None
    assert _plan("usage_pivot", apis=["chat"], models=["x"]).rollup is rollups.HOUR


def test_bins_finer_than_the_grain_read_raw_rows() -> None:
    assert _plan("tokens_over_time", bin_size=timedelta(hours=6)).rollup is rollups.HOUR
    assert _plan("tokens_over_time", bin_size=timedelta(minutes=15)).rollup is rollups.QUARTER
    assert _plan("tokens_over_time", bin_size=timedelta(minutes=5)) is None
    assert _plan("tokens_over_time", bin_size=timedelta(minutes=90)).rollup is rollups.QUARTER
    assert _plan("tokens_over_time", bin_size=timedelta(minutes=100)) is None
    assert _plan("peak_tokens_over_time", bin_size=timedelta(seconds=90)) is None
    assert _plan("peak_tokens_over_time", bin_size=timedelta(minutes=5)).rollup is rollups.MINUTE
    assert _plan("peak_tokens_over_time", bin_size=timedelta(hours=6)).rollup is rollups.PEAK


@pytest.mark.parametrize(
    ("name", "size", "phase", "expected"),
    [
        ("tokens_over_time", timedelta(days=1), timedelta(hours=5), "hour"),  # America/New_York, EST
        ("tokens_over_time", timedelta(days=1), timedelta(hours=18, minutes=30), "quarter"),  # Kolkata
        ("cost_basis", timedelta(hours=1), timedelta(minutes=30), "quarter"),
        ("cost_basis", timedelta(hours=1), timedelta(minutes=10), None),  # no zone is 10 minutes off
        ("peak_tokens_over_time", timedelta(days=1), timedelta(hours=4), "peak"),
        ("peak_tokens_over_time", timedelta(days=1), timedelta(hours=18, minutes=15), "minute"),  # Kathmandu
        ("peak_tokens_over_time", timedelta(days=1), timedelta(seconds=30), None),
        ("daily_usage", None, timedelta(hours=20), "hour"),
        ("monthly_usage", None, timedelta(hours=18, minutes=30), "quarter"),
        ("monthly_usage", None, timedelta(minutes=7), None),
    ],
)
def test_local_bins_read_the_roll_up_whose_grain_divides_width_and_phase(
    name: str, size: timedelta | None, phase: timedelta, expected: str | None
) -> None:
    plan = _plan(name, bin_phase=phase, **({"bin_size": size} if size else {}))
    assert (plan.rollup.name if plan else None) == expected


def test_a_range_without_a_whole_bucket_reads_raw_rows() -> None:
    start, end = (_utc(t) for t in RANGES["within_one_hour"])
    assert rollups.plans("usage_pivot", {"start_time": start, "end_time": end}) == []
    (minute,) = rollups.plans(
        "throttled_minutes", {"start_time": start, "end_time": end, "apis": [], "models": []}
    )
    assert minute.inner_start == datetime(2026, 2, 28, 10, 6) and minute.inner_end == datetime(
        2026, 2, 28, 10, 50
    )


def test_few_rows_are_read_raw(settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append("customMetrics", _metric_rows(random.Random(3))[:50])
    monkeypatch.setitem(rollups.MIN_ROWS, "hour", 51)
    _run(LocalBackend(settings, store), "usage_pivot", {"start_time": _utc(START), "end_time": _utc(END)})
    assert not store.rollup_dir("customMetrics").exists()
    monkeypatch.setitem(rollups.MIN_ROWS, "hour", 50)
    _run(LocalBackend(settings, store), "usage_pivot", {"start_time": _utc(START), "end_time": _utc(END)})
    assert len(list(store.rollup_dir("customMetrics").iterdir())) == 1


def test_switched_off_no_roll_up_is_written(settings: Settings, store: Store) -> None:
    store.append("customMetrics", _metric_rows(random.Random(3))[:50])
    off = LocalBackend(settings.replace(store={"rollups": False}), store)
    _run(off, "usage_pivot", {"start_time": _utc(START), "end_time": _utc(END)})
    assert not store.rollup_dir("customMetrics").exists()


def test_a_data_dir_it_cannot_write_to_says_so_once_and_reads_raw_rows(
    settings: Settings, store: Store, caplog
) -> None:
    store.append("customMetrics", _metric_rows(random.Random(3))[:300])
    store.rollup_dir("customMetrics").write_text("not a directory")
    backend = LocalBackend(settings, store)
    params = {"start_time": _utc(START), "end_time": _utc(END)}
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        first = _run(backend, "usage_pivot", params)
        second = _run(backend, "peak_minute_tokens", params)
    assert len(caplog.records) == 1 and "cannot write roll-ups" in caplog.text
    reference = LocalBackend(settings.replace(store={"rollups": False}))
    pd.testing.assert_frame_equal(first, _run(reference, "usage_pivot", params))
    pd.testing.assert_frame_equal(second, _run(reference, "peak_minute_tokens", params))


def test_renamed_dimensions_get_roll_ups_of_their_own(settings: Settings, store: Store) -> None:
    """The minute roll-up holds the subscription column, so another mapping cannot reuse it."""
    store.append("customMetrics", _metric_rows(random.Random(3))[:300])
    params = {"start_time": _utc(START), "end_time": _utc(END)}
    _run(LocalBackend(settings, store), "peak_minute_tokens", params)
    renamed = settings.replace(subscription_dimension="API ID")
    by_api = _run(LocalBackend(renamed, store), "peak_minute_tokens", params)
    assert len(list(store.rollup_dir("customMetrics").glob("*@minute-*"))) == 2
    assert {"chat", "responses", "true"} <= set(by_api["subscription"])
    reference = LocalBackend(renamed.replace(store={"rollups": False}))
    pd.testing.assert_frame_equal(by_api, _run(reference, "peak_minute_tokens", params))


# --- the store keeps roll-ups with their segments --------------------------------------


def test_compaction_retires_roll_ups_with_their_segments(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _metric_rows(random.Random(5))
    for part in range(4):
        store.append("customMetrics", rows[part::4])
    backend = LocalBackend(settings, store)
    params = {"start_time": _utc(START), "end_time": _utc(END)}
    before = _run(backend, "usage_pivot", params)
    directory = store.rollup_dir("customMetrics")
    old = sorted(p.name for p in directory.iterdir())
    assert len(old) == 4
    store.compact("customMetrics")
    assert sorted(p.name for p in directory.iterdir()) == old  # a reader may still read them
    after = _run(backend, "usage_pivot", params)
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-12)
    (live,) = store.segments("customMetrics")
    assert {rolled_from(p.name) for p in directory.iterdir()} == {
        *(rolled_from(n) for n in old),
        live.file,
    }
    monkeypatch.setattr(store_module, "RETIRED_GRACE_SECONDS", 0.0)
    orphan = (
        directory / "seg-19700101T000000-000000000000@hour-abc.parquet"
    )  # a reader's, for a segment long gone
    orphan.write_bytes(b"")
    time.sleep(0.01)
    store.compact("customMetrics")
    assert [rolled_from(p.name) for p in directory.iterdir()] == [live.file]
    pd.testing.assert_frame_equal(before, _run(backend, "usage_pivot", params), check_exact=False, rtol=1e-12)


def test_a_damaged_roll_up_is_worded_in_the_log_and_raw_rows_answer(
    settings: Settings, store: Store, caplog
) -> None:
    store.append("customMetrics", _metric_rows(random.Random(3))[:300])
    params = {"start_time": _utc(START), "end_time": _utc(END)}
    _run(LocalBackend(settings, store), "usage_pivot", params)
    (written,) = store.rollup_dir("customMetrics").glob("*@hour-*")
    written.write_bytes(b"PAR1 not really")
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        answer = _run(LocalBackend(settings, store), "usage_pivot", params)
    assert "the roll-up failed" in caplog.text
    reference = LocalBackend(settings.replace(store={"rollups": False}))
    pd.testing.assert_frame_equal(answer, _run(reference, "usage_pivot", params))


def test_writing_roll_ups_ahead_covers_every_segment_once(settings: Settings, store: Store) -> None:
    rows = _metric_rows(random.Random(3))
    store.append("customMetrics", rows[:200])
    store.append("customMetrics", rows[200:400])
    backend = LocalBackend(settings, store)
    assert backend.write_rollups() == 2 * len(rollups.AHEAD)
    assert LocalBackend(settings, store).write_rollups() == 0
    written = sorted(store.rollup_dir("customMetrics").iterdir())
    _run(backend, "peak_minute_tokens", {"start_time": _utc(START), "end_time": _utc(END)})
    assert sorted(store.rollup_dir("customMetrics").iterdir()) == written
    assert LocalBackend(settings.replace(store={"rollups": False}), store).write_rollups() == 0


# --- local bins across a change of UTC offset (tokenboard/localtime.py's pieces) ------------

DST_START, DST_END = datetime(2026, 3, 6), datetime(2026, 4, 7)  # New York springs forward on
# 8 March, Lord Howe Island (+11:00 -> +10:30) falls back on 5 April


@pytest.fixture(scope="module")
def dst_backends(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBackend, LocalBackend]:
    store = Store(tmp_path_factory.mktemp("dst") / "data")
    rng = random.Random(7)
    span = (DST_END - DST_START).total_seconds()
    rows = _metric_rows(rng)
    for row in rows:  # the odd rows, spread over the month
        row["timestamp"] = DST_START + timedelta(seconds=rng.uniform(0, span))
    store.append("customMetrics", rows[: len(rows) // 2])
    store.append("customMetrics", rows[len(rows) // 2 :])
    return _rolled_and_per_row(store)


@pytest.mark.parametrize("unit", ["15m", "1h", "6h", "1d", localtime.MONTH])
@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"])
def test_local_bins_across_an_offset_change_equal_the_per_row_path(dst_backends, tz: str, unit: str) -> None:
    rolled, per_row = dst_backends
    start = datetime(2026, 3, 6, 13, 7, 11, tzinfo=UTC)
    bins = localtime.plan(start, datetime(2026, 4, 6, 22, 40, tzinfo=UTC), tz, unit)
    if unit == "1d":  # a day's grid moves with the offset: one piece (one query) on each side
        assert len(bins.pieces) == (2 if tz in ("America/New_York", "Australia/Lord_Howe") else 1)
    names = ("tokens_over_time", "cost_basis", "peak_tokens_over_time", "daily_usage", "monthly_usage")
    read = set()
    for name in names:
        for piece in bins.pieces:
            params = {k: v for k, v in piece.params().items() if _declares(name, {k: v})}
            bound = rolled.bind(name, params)
            read.add(rolled.reads(bound))
            _assert_same(rolled.run_query(bound).frame, _per_row_frame(per_row, bound), f"{name} {piece}")
    assert read - {"raw rows"}  # a roll-up answered some of them


# --- roll-ups through the store's own repairs ------------------------------------------------

MONTH_PARAMS = {"start_time": _utc(START - timedelta(days=1)), "end_time": _utc(END + timedelta(days=1))}
CHECKED = ("usage_pivot", "tokens_over_time", "peak_minute_tokens", "daily_usage")


def _answers(backend: LocalBackend) -> dict[str, pd.DataFrame]:
    return {name: _run(backend, name, _params_for(name)) for name in CHECKED}


def _params_for(name: str) -> dict[str, Any]:
    params = {**MONTH_PARAMS, "bin_size": timedelta(hours=6), "bin_phase": timedelta(hours=5)}
    return {k: v for k, v in params.items() if _declares(name, {k: v})}


def _assert_answers_equal_per_row(backend: LocalBackend, settings: Settings) -> None:
    reference = LocalBackend(settings.replace(store={"rollups": False}), Store(settings.store.data_dir))
    for name, frame in _answers(backend).items():
        bound = backend.bind(name, _params_for(name))
        assert backend.reads(bound) != "raw rows", name
        _assert_same(frame, _per_row_frame(reference, bound), name)


def test_a_re_sent_batch_changes_no_roll_up(settings: Settings, store: Store) -> None:
    rows = _metric_rows(random.Random(4))
    store.append("customMetrics", rows[:1000], batch_id="gw-1")
    store.append("customMetrics", rows[1000:], batch_id="gw-2")
    backend = LocalBackend(settings, store)
    before = _answers(backend)
    written = sorted(p.name for p in store.rollup_dir("customMetrics").iterdir())
    assert store.append("customMetrics", rows[:1000], batch_id="gw-1") is None  # a retry after an error
    after = _answers(backend)
    for name in CHECKED:
        _assert_same(after[name], before[name], name)
    assert sorted(p.name for p in store.rollup_dir("customMetrics").iterdir()) == written
    _assert_answers_equal_per_row(backend, settings)


def test_a_segment_adopted_by_recovery_gets_its_roll_ups(settings: Settings, store: Store) -> None:
    rows = _metric_rows(random.Random(4))
    store.append("customMetrics", rows[:1000])
    backend = LocalBackend(settings, store)
    _answers(backend)
    # A writer stopped between renaming its segment into place and swapping the manifest.
    arrow = appinsights.table("customMetrics", rows[1000:]).sort_by("timestamp")
    store._write_segment("customMetrics", arrow, recovery.footer_metadata(batch="lost"), "lost")
    reopened = Store(settings.store.data_dir)
    assert len(reopened.segments("customMetrics")) == 2  # recovery on open adopted it
    _assert_answers_equal_per_row(LocalBackend(settings, reopened), settings)
    _assert_answers_equal_per_row(backend, settings)  # a backend open all along sees it too


def test_a_rebuilt_manifest_reuses_the_roll_ups_of_the_same_segments(
    settings: Settings, store: Store
) -> None:
    rows = _metric_rows(random.Random(4))
    store.append("customMetrics", rows[:1000])
    store.append("customMetrics", rows[1000:])
    _answers(LocalBackend(settings, store))
    written = sorted(p.name for p in store.rollup_dir("customMetrics").iterdir())
    (store.table_dir("customMetrics") / "manifest.json").unlink()
    reopened = Store(settings.store.data_dir)
    _assert_answers_equal_per_row(LocalBackend(settings, reopened), settings)
    assert sorted(p.name for p in reopened.rollup_dir("customMetrics").iterdir()) == written


def test_a_set_aside_segment_takes_its_roll_ups_along(settings: Settings, store: Store, caplog) -> None:
    rows = _metric_rows(random.Random(4))
    for part in range(3):
        store.append("customMetrics", rows[part::3])
    backend = LocalBackend(settings, store)
    _answers(backend)
    bad = store.segments("customMetrics")[1]
    good = (store.table_dir("customMetrics") / bad.file).read_bytes()
    (store.table_dir("customMetrics") / bad.file).write_bytes(b"PAR1 not a segment")
    with caplog.at_level(logging.WARNING, logger="tokenboard"):
        # The roll-ups were written: the damage shows at an edge of the range, or at the next one.
        _run(backend, "data_coverage", MONTH_PARAMS)
    assert "Set aside" in caplog.text
    assert bad.file not in {rolled_from(p.name) for p in store.rollup_dir("customMetrics").iterdir()}
    _assert_answers_equal_per_row(backend, settings)  # two segments, their roll-ups

    # A good copy put back: counted again, with roll-ups written from it.
    (store.table_dir("customMetrics") / "quarantine" / bad.file).unlink()
    (store.table_dir("customMetrics") / bad.file).write_bytes(good)
    reopened = Store(settings.store.data_dir)
    assert len(reopened.segments("customMetrics")) == 3
    _assert_answers_equal_per_row(LocalBackend(settings, reopened), settings)
    assert bad.file in {rolled_from(p.name) for p in store.rollup_dir("customMetrics").iterdir()}


def test_clearing_the_store_deletes_its_roll_ups(settings: Settings, store: Store) -> None:
    store.append("customMetrics", _metric_rows(random.Random(4)))
    _answers(LocalBackend(settings, store))
    assert any(store.rollup_dir("customMetrics").iterdir())
    store.clear()
    assert not any(store.rollup_dir("customMetrics").iterdir())


def test_a_roll_up_deleted_by_hand_is_written_again(settings: Settings, store: Store, caplog) -> None:
    store.append("customMetrics", _metric_rows(random.Random(4)))
    backend = LocalBackend(settings, store)
    _answers(backend)
    for path in store.rollup_dir("customMetrics").glob("*@hour-*"):
        path.unlink()
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        _assert_answers_equal_per_row(backend, settings)
    assert "the roll-up failed" in caplog.text  # once, then written again
    assert list(store.rollup_dir("customMetrics").glob("*@hour-*"))
