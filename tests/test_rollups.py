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
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tokenboard import kql
from tokenboard import store as store_module
from tokenboard.backends import bins, local, rollups
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store

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


@pytest.fixture(scope="module")
def disjoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBackend, LocalBackend]:
    """The odd metric rows in three segments cut at SPLITS; roll-ups on, and the per-row path."""
    store = Store(tmp_path_factory.mktemp("disjoint") / "data")
    rows = sorted(_metric_rows(random.Random(11)), key=lambda r: r["timestamp"])
    cuts = [0, *(sum(r["timestamp"] < t for r in rows) for t in SPLITS), len(rows)]
    for start, stop in itertools.pairwise(cuts):
        store.append("customMetrics", rows[start:stop])
    settings = Settings(data_dir=store.data_dir, seed_on_start=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "DISTINCT_LIMIT", 0)
        per_row = LocalBackend(settings.replace(store={"rollups": False}), store)
        per_row.refresh()
    return LocalBackend(settings, store), per_row


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
    stems = {p.stem for p in odd_store.segment_paths("customMetrics")}
    assert {f.split(".", 1)[0] for f in files} == stems
    assert sum(".hour-" in f for f in files) == sum(".minute-" in f for f in files) == len(stems)


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
    assert _plan("tokens_over_time", bin_size=timedelta(minutes=15)) is None
    assert _plan("tokens_over_time", bin_size=timedelta(minutes=90)) is None
    assert _plan("peak_tokens_over_time", bin_size=timedelta(seconds=90)) is None
    assert _plan("peak_tokens_over_time", bin_size=timedelta(minutes=5)).rollup is rollups.MINUTE
    assert _plan("peak_tokens_over_time", bin_size=timedelta(hours=6)).rollup is rollups.PEAK


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
    assert len(list(store.rollup_dir("customMetrics").glob("*.minute-*"))) == 2
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
    assert {p.name.split(".", 1)[0] for p in directory.iterdir()} == {
        *(n.split(".", 1)[0] for n in old),
        Path(live.file).stem,
    }
    monkeypatch.setattr(store_module, "RETIRED_GRACE_SECONDS", 0.0)
    orphan = (
        directory / "seg-19700101T000000-000000000000.hour-abc.parquet"
    )  # a reader's, for a segment long gone
    orphan.write_bytes(b"")
    time.sleep(0.01)
    store.compact("customMetrics")
    assert [p.name.split(".", 1)[0] for p in directory.iterdir()] == [Path(live.file).stem]
    pd.testing.assert_frame_equal(before, _run(backend, "usage_pivot", params), check_exact=False, rtol=1e-12)


def test_a_damaged_roll_up_is_worded_in_the_log_and_raw_rows_answer(
    settings: Settings, store: Store, caplog
) -> None:
    store.append("customMetrics", _metric_rows(random.Random(3))[:300])
    params = {"start_time": _utc(START), "end_time": _utc(END)}
    _run(LocalBackend(settings, store), "usage_pivot", params)
    (written,) = store.rollup_dir("customMetrics").glob("*.hour-*")
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
    assert backend.write_rollups() == 2 * len(rollups.ROLLUPS)
    assert LocalBackend(settings, store).write_rollups() == 0
    written = sorted(store.rollup_dir("customMetrics").iterdir())
    _run(backend, "peak_minute_tokens", {"start_time": _utc(START), "end_time": _utc(END)})
    assert sorted(store.rollup_dir("customMetrics").iterdir()) == written
    assert LocalBackend(settings.replace(store={"rollups": False}), store).write_rollups() == 0
