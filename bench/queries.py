"""Time every query file on a local store of a given size; see bench/README.md.

    .venv/bin/python bench/queries.py --rows 10000000 [--data-dir D] [--runs 5]

Seeds the store once (reused while its row count matches), then, for a 24 h range (the
dashboard's default) and a 30-day range ending at the newest row: the cold first run of
each query in a fresh backend, the median and max of warm runs, the warm median on raw
rows (``[store] rollups = false``), the rows returned and what the query read. For every
query with a hand-written DuckDB SQL below, it checks the frames are equal and prints KQL
path / hand SQL, with roll-ups and on raw rows. ``--rewrite-rollups`` deletes the store's
roll-ups and times writing them; ``--check`` compares every query with the per-row path
(prelude per row, no roll-ups, bin() as duckdb-kql translates it); with
tests/azure/la_emulator.py present it counts the rows each query returns through the Log
Analytics emulator (the Azure path).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import pandas as pd  # noqa: E402
from duckdb_kql.types import kusto_type  # noqa: E402

from tokenboard import kql  # noqa: E402
from tokenboard.backends import bins, hitcalls  # noqa: E402
from tokenboard.backends.local import LocalBackend  # noqa: E402
from tokenboard.config import Settings  # noqa: E402
from tokenboard.frames import normalize  # noqa: E402
from tokenboard.store import Store  # noqa: E402

RANGES = (("24h", timedelta(hours=24)), ("30d", timedelta(days=30)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="customMetrics rows (default 10M)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="store to seed or reuse (default $TMPDIR/tokenboard-bench/<seeder>-<rows>)",
    )
    parser.add_argument("--runs", type=int, default=5, help="warm runs per query (default 5)")
    parser.add_argument("--seeder", choices=("synth", "demo"), default="synth",
                        help="synth: bench/synth.py (fast); demo: tokenboard.demo.seed")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="compare with the per-row prelude path")
    parser.add_argument("--no-azure", action="store_true", help="skip the emulator row counts")
    parser.add_argument("--rewrite-rollups", action="store_true",
                        help="delete the store's roll-ups first and time writing them")  # fmt: skip
    args = parser.parse_args(argv)

    data_dir = (
        args.data_dir or Path(tempfile.gettempdir()) / "tokenboard-bench" / f"{args.seeder}-{args.rows}"
    )
    settings = Settings(data_dir=data_dir, seed_on_start=False)
    store = Store(data_dir)
    seeded = ensure_store(store, settings, args.rows, args.seeder)
    end = newest(store) + timedelta(minutes=1)
    print(f"machine: {machine()}; python {platform.python_version()}")
    print(
        f"store: {data_dir} ({args.seeder}, {seeded}) "
        f"customMetrics {store.row_count('customMetrics'):,} rows "
        f"in {len(store.segments('customMetrics'))} segments, requests {store.row_count('requests'):,}; "
        f"ranges end {end:%Y-%m-%d %H:%M} UTC"
    )
    if args.rewrite_rollups:
        print("\n== writing roll-ups (once per store; then once per new segment) ==")
        time_rollup_writes(settings, store)
    for label, span in RANGES:
        params = {"start_time": end - span, "end_time": end}
        print(f"\n== range {label} ==")
        time_queries(settings, store, params, args.runs)
        compare_hand_sql(settings, store, params)
        if args.check:
            check_paths(settings, store, params)
    if not args.no_azure:
        azure_rows(settings, store, end)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB; load at the end {os.getloadavg()[0]:.1f}")
    return 0


# --- the store ---------------------------------------------------------------------------


def ensure_store(store: Store, settings: Settings, rows: int, seeder: str) -> str:
    """Seed unless the store already holds about ``rows`` metric rows; say which."""
    have = store.row_count("customMetrics")
    # A store seeded before requests carried operation_Id beside dependencies rows is stale.
    if have and abs(have - rows) <= max(rows // 100, 10) and store.row_count("dependencies"):
        return "reused"
    store.clear()
    began = time.perf_counter()
    if seeder == "demo":
        from tokenboard.demo import seed

        seed(store, settings, rows=rows)
    else:
        from synth import seed

        seed(store, settings, rows=rows)
    seeded = time.perf_counter() - began
    LocalBackend(settings, store).write_rollups()  # as the dashboard does after seeding
    return f"seeded in {seeded:.1f} s, roll-ups written in {time.perf_counter() - began - seeded:.1f} s"


def newest(store: Store) -> datetime:
    return max(datetime.fromisoformat(s.max_ts) for s in store.segments("customMetrics")).replace(tzinfo=UTC)


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"


def params_for(name: str, params: dict) -> dict:
    declared = {p.name for p in kql.get_query(name).params}
    return {k: v for k, v in params.items() if k in declared}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    value = fn()
    return time.perf_counter() - began, value


def cpu_timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of this process (every DuckDB thread): the second moves
    far less than the first when other jobs share the machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


# --- KQL path ------------------------------------------------------------------------------


def time_queries(settings: Settings, store: Store, params: dict, runs: int) -> dict[str, float]:
    """Cold first run (fresh backend), warm median / max, and the warm median on raw rows."""
    backend = LocalBackend(settings, store)
    raw = LocalBackend(settings.replace(store={"rollups": False}), store)
    opened, _ = timed(backend.refresh)
    raw.refresh()
    print(f"fresh backend, first refresh (views + distinct customDimensions): {opened:.3f} s")
    head = ("first", "median", "max", "cpu", "raw", "raw cpu", "rows")
    print(f"{'query':24} " + " ".join(f"{h:>7}" for h in head) + "  reads")
    medians = {}
    totals = [0.0] * 5
    for name in sorted(kql.catalog()):
        bound = backend.bind(name, params_for(name, params))
        first, frame = timed(lambda b=bound: backend.run_query(b).frame)
        raw.run_query(bound)
        warm, raw_warm = [], []
        for _ in range(runs):  # interleaved, so a burst of load hits both alike
            warm.append(cpu_timed(lambda b=bound: backend.run_query(b)))
            raw_warm.append(cpu_timed(lambda b=bound: raw.run_query(b)))
        wall, cpu = (statistics.median(w[i] for w in warm) for i in (0, 1))
        raw_wall, raw_cpu = (statistics.median(w[i] for w in raw_warm) for i in (0, 1))
        medians[name] = wall
        for i, figure in enumerate((first, wall, cpu, raw_wall, raw_cpu)):
            totals[i] += figure
        reads = backend.reads(bound)
        figures = (first, wall, max(w[0] for w in warm), cpu, raw_wall, raw_cpu)
        print(f"{name:24} " + " ".join(f"{f:7.3f}" for f in figures) + f" {len(frame):7}  {reads}")
    first, wall, cpu, raw_wall, raw_cpu = totals
    print(f"{'all queries':24} {first:7.3f} {wall:7.3f} {'':7} {cpu:7.3f} {raw_wall:7.3f} {raw_cpu:7.3f}")
    print("(seconds; cpu: CPU time of every thread; raw: store.rollups = false; bin() rewritten in both)")
    return medians


def time_rollup_writes(settings: Settings, store: Store) -> None:
    """Delete the roll-ups, then time writing them for every segment (once per store)."""
    shutil.rmtree(store.rollup_dir("customMetrics"), ignore_errors=True)
    backend = LocalBackend(settings, store)
    backend.refresh()
    wall, cpu = time.perf_counter(), time.process_time()
    written = backend.write_rollups()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    size = sum(p.stat().st_size for p in store.rollup_dir("customMetrics").iterdir())
    segments = sum(p.stat().st_size for p in store.segment_paths("customMetrics"))
    print(f"{written} roll-up files written in {wall:.3f} s ({cpu:.3f} s CPU)")
    print(f"roll-ups on disk: {size / 2**20:.1f} MB beside {segments / 2**20:.1f} MB of segments")


def check_paths(settings: Settings, store: Store, params: dict) -> None:
    """Every query's frame equals the per-row path's: the prelude per row, raw rows, bin() as
    translated, the whole dependencies table (no hitcalls narrowing)."""
    fast = LocalBackend(settings, store)
    slow = LocalBackend(settings.replace(store={"rollups": False}), store)
    slow._local_prelude = slow._shared_prelude  # run _tables.kql itself, per row
    for name in sorted(kql.catalog()):
        bound = fast.bind(name, params_for(name, params))
        fast_frame = fast.run_query(bound).frame
        with (
            mock.patch.object(bins, "rewrite", lambda sql: sql),
            mock.patch.object(hitcalls, "QUERIES", frozenset()),
        ):
            slow_frame = slow.run_query(bound).frame
        pd.testing.assert_frame_equal(fast_frame, slow_frame, check_exact=False, rtol=1e-9)
    print("check: every query equals the per-row path (per-row prelude, no roll-ups, bin() as translated,")
    print("       the whole dependencies table)")


# --- hand-written SQL for the heaviest queries ------------------------------------------------
# What a person would write against the same Parquet segments: the JSON of each distinct
# customDimensions parsed once into a small table (built once, untimed, as the backend's
# own side table is), joined on the text, then a plain GROUP BY.

HAND_DIMS = """CREATE OR REPLACE TABLE bench_hand_dims AS
SELECT cd,
    coalesce(json_extract_string(cd, '$."{sub}"'), '') AS subscription,
    coalesce(json_extract_string(cd, '$."{api}"'), '') AS api,
    coalesce(json_extract_string(cd, '$."{model}"'), '') AS model
FROM (SELECT DISTINCT customDimensions AS cd FROM {src})"""

_ROWS = """{src} AS m JOIN bench_hand_dims AS d ON m.customDimensions = d.cd
    WHERE timestamp >= $start AND timestamp < $end"""

_PER_MINUTE = f"""per_minute AS (
    SELECT d.subscription, time_bucket(INTERVAL 1 minute, timestamp, TIMESTAMP '1970-01-01') AS minute,
        sum(valueSum) AS tokens
    FROM {_ROWS} AND name = $total GROUP BY ALL)"""

HAND_SQL = {
    "usage_pivot": f"""
SELECT d.subscription, d.api, d.model, name AS metric,
    sum(valueSum) AS tokens, sum(valueCount)::BIGINT AS calls
FROM {_ROWS} GROUP BY ALL ORDER BY tokens DESC, subscription, api, model, metric""",
    "top_consumers": f"""
WITH per_sub AS (
    SELECT d.subscription,
        coalesce(sum(valueSum) FILTER (WHERE name = $total), 0) AS total_tokens,
        coalesce(sum(valueSum) FILTER (WHERE name = $prompt), 0) AS prompt_tokens,
        coalesce(sum(valueSum) FILTER (WHERE name = $completion), 0) AS completion_tokens,
        coalesce(sum(valueCount) FILTER (WHERE name = $total), 0)::BIGINT AS calls
    FROM {_ROWS} GROUP BY ALL),
grand AS (SELECT coalesce(sum(total_tokens), 0) AS g FROM per_sub)
SELECT subscription, total_tokens, prompt_tokens, completion_tokens, calls,
    CASE WHEN g > 0 THEN total_tokens / g ELSE 0.0 END AS share
FROM per_sub, grand ORDER BY total_tokens DESC LIMIT 100""",
    "monthly_usage": f"""
SELECT date_trunc('day', timestamp) AS timestamp, d.subscription, name AS metric,
    sum(valueSum) AS tokens, sum(valueCount)::BIGINT AS calls
FROM {_ROWS} GROUP BY ALL ORDER BY timestamp, subscription, metric""",
    "peak_minute_tokens": f"""
WITH {_PER_MINUTE},
stats AS (
    SELECT subscription, max(tokens) AS peak_tokens, count(*) AS active_minutes, avg(tokens) AS mean_tokens
    FROM per_minute GROUP BY subscription)
SELECT s.subscription, s.peak_tokens, min(p.minute) AS peak_minute, s.active_minutes, s.mean_tokens
FROM stats s JOIN per_minute p ON p.subscription = s.subscription AND p.tokens = s.peak_tokens
GROUP BY ALL ORDER BY peak_tokens DESC, subscription""",
    "peak_tokens_over_time": f"""
WITH {_PER_MINUTE}
SELECT time_bucket($bin, minute, TIMESTAMP '1970-01-01') AS timestamp, subscription,
    max(tokens) AS peak_tokens
FROM per_minute GROUP BY ALL ORDER BY timestamp, subscription""",
}


def compare_hand_sql(settings: Settings, store: Store, params: dict) -> None:
    backend = LocalBackend(settings, store)
    backend.refresh()
    con = backend._con  # the same process and connection settings as the KQL path
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in store.segment_paths("customMetrics"))
    src = f"read_parquet([{files}])"
    names = {"sub": settings.telemetry.subscription_dimension, "api": settings.telemetry.api_dimension,
             "model": settings.telemetry.model_dimension}  # fmt: skip
    keys = {k: v.replace("'", "''").replace('"', '\\"') for k, v in names.items()}
    built, _ = timed(lambda: con.execute(HAND_DIMS.format(src=src, **keys)))
    print(f"hand SQL's own distinct-customDimensions table: built once in {built:.3f} s (not in the ratios)")
    raw = LocalBackend(settings.replace(store={"rollups": False}), store)
    print(f"{'query':24} {'KQL':>7} {'raw KQL':>7} {'hand':>7} {'KQL/hand':>8} {'raw/hand':>8}")
    for name in HAND_SQL:
        sql = HAND_SQL[name].replace("{src}", src)
        values = {
            "start": params["start_time"].replace(tzinfo=None),
            "end": params["end_time"].replace(tzinfo=None),
            "total": settings.telemetry.total_metric,
            "prompt": settings.telemetry.prompt_metric,
            "completion": settings.telemetry.completion_metric,
            "bin": kql.auto_bin(params["start_time"], params["end_time"]),
        }
        used = {k: v for k, v in values.items() if f"${k}" in sql}

        def hand(sql: str = sql, used: dict = used) -> pd.DataFrame:
            cursor = con.cursor()
            try:
                relation = cursor.sql(sql, params=used)
                types = [kusto_type(t) for t in relation.types]
                table = relation.arrow()
                table = table.read_all() if hasattr(table, "read_all") else table
                return normalize(table.to_pandas(), types)
            finally:
                cursor.close()

        bound = backend.bind(name, params_for(name, params))
        hand_frame = hand()
        for path in (backend, raw):
            pd.testing.assert_frame_equal(
                path.run_query(bound).frame, hand_frame, check_exact=False, rtol=1e-9
            )
        # Interleaved, so a burst of load on the shared machine hits all three alike.
        times: dict[str, list[float]] = {"kql": [], "raw": [], "hand": []}
        for _ in range(7):
            times["kql"].append(timed(lambda b=bound: backend.run_query(b))[0])
            times["raw"].append(timed(lambda b=bound: raw.run_query(b))[0])
            times["hand"].append(timed(hand)[0])
        kql_med, raw_med, hand_med = (statistics.median(times[k]) for k in ("kql", "raw", "hand"))
        print(
            f"{name:24} {kql_med:7.3f} {raw_med:7.3f} {hand_med:7.3f} "
            f"{kql_med / hand_med:8.2f} {raw_med / hand_med:8.2f}"
        )
    print("(frames equal; KQL: as the dashboard runs it; raw KQL: store.rollups = false)")


# --- the Azure path --------------------------------------------------------------------------


def azure_rows(settings: Settings, store: Store, end: datetime) -> None:
    """Rows per query through the real SDK and the Log Analytics emulator (if present)."""
    emulator_file = ROOT / "tests" / "azure" / "la_emulator.py"
    print("\n== Azure path: rows returned per query ==")
    if not emulator_file.exists():
        print("tests/azure/la_emulator.py is absent: these are the local path's row counts")
        return
    sys.path.insert(0, str(emulator_file.parent))
    from la_emulator import LogAnalyticsEmulator

    from tokenboard.backends.azure import AzureBackend

    with LogAnalyticsEmulator(store, now=end) as emu:
        os.environ.update(emu.identity_environment())
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        azure = AzureBackend(settings.replace(
            backend="azure", app_insights_resource_id=emu.resource_id, azure_endpoint=emu.endpoint
        ))  # fmt: skip
        print(f"{'query':24} " + " ".join(f"{label:>7}" for label, _ in RANGES))
        worst = 0
        for name in sorted(kql.catalog()):
            counts = []
            for _, span in RANGES:
                params = params_for(name, {"start_time": end - span, "end_time": end})
                frame = azure.run_query(azure.bind(name, params)).frame
                counts.append(len(frame))
            worst = max(worst, *counts)
            print(f"{name:24} " + " ".join(f"{c:7}" for c in counts))
        print(
            f"largest answer: {worst} rows (target < 10,000); input {store.row_count('customMetrics'):,} rows"
        )


if __name__ == "__main__":
    raise SystemExit(main())
