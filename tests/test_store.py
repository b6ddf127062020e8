"""The local store: atomic segments, one writer process and concurrent readers, compaction.

The dashboard reads while the local gateway (another process) writes. These tests run a
real writer process against readers querying through LocalBackend (DuckDB + duckdb-kql)
and check that a reader never errors, never sees part of an append, and that the final
counts are exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenboard import kql
from tokenboard import store as store_module
from tokenboard.appinsights import SCHEMAS
from tokenboard.appinsights import table as conform
from tokenboard.backends import rollups
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store, StoreError

ROOT = Path(__file__).resolve().parent.parent
BATCH_ROWS = 40
PIVOT_WINDOW = {
    "start_time": datetime(2026, 11, 24, tzinfo=UTC),
    "end_time": datetime(2026, 11, 25, tzinfo=UTC),
}
COUNT_BY_BATCH = kql.BoundQuery(
    "count_by_batch", body="customMetrics | summarize n = count(), s = sum(valueSum) by name"
)

# A writer process: appends `batches` batches of BATCH_ROWS rows, each batch one `name`.
WRITER = textwrap.dedent(
    """
    import sys
    import time
    from datetime import datetime, timedelta
    from tokenboard import store as store_module
    from tokenboard.store import Store

    data_dir, writer = sys.argv[1], sys.argv[2]
    batches, batch_rows, compact_at = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    grace, pause = float(sys.argv[6]), float(sys.argv[7])
    store_module.COMPACT_AT = compact_at
    store_module.RETIRED_GRACE_SECONDS = grace
    store = Store(data_dir)
    start = datetime(2026, 11, 24, 12, 0)
    for b in range(batches):
        rows = [
            {"timestamp": start + timedelta(seconds=b * 60 + i), "name": f"{writer}-{b:04d}",
             "value": 1.0, "valueSum": 1.0, "valueCount": 1, "itemCount": 1,
             "customDimensions": {"Client Subscription": "müller-ağ-東京", "API ID": ""}}
            for i in range(batch_rows)
        ]
        store.append("customMetrics", rows)
        time.sleep(pause)
    """
)


def _metric_rows(n: int, name: str = "Total Tokens", start: datetime | None = None) -> list[dict]:
    start = start or datetime(2026, 11, 24, 12, 0)
    return [
        {
            "timestamp": start + timedelta(seconds=i),
            "name": name,
            "value": float(i),
            "valueSum": float(i),
            "valueCount": 1,
            "customDimensions": {"Client Subscription": "sub-a", "API ID": "chat"},
            "itemCount": 1,
        }
        for i in range(n)
    ]


def _start_writer(
    data_dir: Path,
    writer: str,
    batches: int,
    compact_at: int = 48,
    grace: float = store_module.RETIRED_GRACE_SECONDS,
    pause: float = 0.0,
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [writer, batches, BATCH_ROWS, compact_at, grace, pause]
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), *map(str, args)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until_done(
    backend: LocalBackend | list[LocalBackend], writers: list[subprocess.Popen], readers: int = 2
) -> tuple[list[list[pd.DataFrame]], list[BaseException]]:
    """Query from `readers` threads (taking turns at the backends) until every writer has
    exited; each thread's frames in order."""
    backends = backend if isinstance(backend, list) else [backend]
    seen: list[list[pd.DataFrame]] = [[] for _ in range(readers)]
    errors: list[BaseException] = []

    def read(mine: list[pd.DataFrame], backend: LocalBackend) -> None:
        while any(w.poll() is None for w in writers):
            try:
                mine.append(backend.run_query(COUNT_BY_BATCH).frame)
                # The same through a query file and the dimension prelude.
                pivot = backend.run_query(backend.bind("usage_pivot", PIVOT_WINDOW)).frame
                assert set(pivot["subscription"]) <= {"müller-ağ-東京"} and set(pivot["api"]) <= {""}
                mine.append(pivot.rename(columns={"metric": "name", "calls": "n", "tokens": "s"}))
            except BaseException as exc:  # the assertion below reports whatever a reader met
                errors.append(exc)
                return

    threads = [
        threading.Thread(target=read, args=(mine, backends[i % len(backends)])) for i, mine in enumerate(seen)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    for writer in writers:
        writer.wait(timeout=60)
    return seen, errors


def _assert_whole_batches_in_order(frame: pd.DataFrame) -> None:
    """Every batch seen is complete, and a writer's batches appear oldest first."""
    counts = dict(zip(frame["name"], frame["n"], strict=True))
    assert all(n == BATCH_ROWS for n in counts.values()), counts
    assert (frame["s"] == frame["n"]).all()
    by_writer: dict[str, list[int]] = {}
    for name in counts:
        writer, batch = name.rsplit("-", 1)
        by_writer.setdefault(writer, []).append(int(batch))
    for batches in by_writer.values():
        assert sorted(batches) == list(range(len(batches))), batches


# --- appends ------------------------------------------------------------------------------


def test_append_writes_one_segment_and_a_manifest_naming_it(store: Store) -> None:
    segment = store.append("customMetrics", _metric_rows(5))
    assert segment is not None and segment.rows == 5
    directory = store.table_dir("customMetrics")
    assert [p.name for p in store.segment_paths("customMetrics")] == [segment.file]
    assert (directory / segment.file).is_file()
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["segments"][0]["file"] == segment.file
    assert store.row_count("customMetrics") == 5
    assert store.version("customMetrics") == 1
    assert segment.min_ts == "2026-11-24T12:00:00" and segment.max_ts == "2026-11-24T12:00:04"


def test_appending_nothing_writes_nothing(store: Store) -> None:
    assert store.append("requests", []) is None
    assert store.is_empty()
    assert store.version("requests") == 0


def test_rows_are_conformed_to_the_app_insights_schema(store: Store) -> None:
    rows = [
        {"timestamp": datetime(2026, 11, 24, 12, 0), "name": "Total Tokens", "valueSum": 3.0,
         "customDimensions": None},
        {"timestamp": datetime(2026, 11, 24, 12, 1), "name": "Total Tokens", "valueSum": 4.0,
         "customDimensions": '{"Client Subscription": "müller-ağ-東京 😀", "API ID": ""}'},
    ]  # fmt: skip
    store.append("customMetrics", rows)
    table = pq.read_table(store.segment_paths("customMetrics")[0])
    assert table.schema == SCHEMAS["customMetrics"]
    dims = table.column("customDimensions").to_pylist()
    assert dims[0] == "{}"
    assert json.loads(dims[1]) == {"Client Subscription": "müller-ağ-東京 😀", "API ID": ""}
    assert table.column("valueCount").to_pylist() == [None, None]


def test_tz_aware_timestamps_are_stored_as_utc() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-11-24T13:00:00+01:00"], utc=True),
            "name": ["x"],
            "valueSum": [1.0],
        }
    )
    table = conform("customMetrics", frame)
    assert table.column("timestamp").to_pylist() == [datetime(2026, 11, 24, 12, 0)]


def test_unknown_table_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown table 'traces'"):
        store.append("traces", [])


def test_clear_empties_every_table_and_bumps_the_version(store: Store) -> None:
    store.append("customMetrics", _metric_rows(3))
    store.append("requests", [{"timestamp": datetime(2026, 11, 24), "resultCode": "429", "itemCount": 1}])
    store.clear()
    assert store.is_empty()
    assert store.version("customMetrics") == 2


def test_a_reader_sees_appends_and_clears(
    settings: Settings, store: Store, local_backend: LocalBackend
) -> None:
    store.append("customMetrics", _metric_rows(3))
    assert local_backend.run_query(COUNT_BY_BATCH).frame["n"].tolist() == [3]
    store.append("customMetrics", _metric_rows(2, name="Prompt Tokens"))
    assert sorted(local_backend.run_query(COUNT_BY_BATCH).frame["n"].tolist()) == [2, 3]
    store.clear()
    assert local_backend.run_query(COUNT_BY_BATCH).frame.empty


# --- crashes ------------------------------------------------------------------------------


def test_files_a_crashed_writer_left_behind_are_ignored(store: Store, local_backend: LocalBackend) -> None:
    """By a store already open; the next one to open tidies them (tests/test_store_faults.py)."""
    store.append("customMetrics", _metric_rows(10))
    directory = store.table_dir("customMetrics")
    # Killed while writing a segment: a half-written temp file.
    (directory / ".seg-20261124T120000-0123456789ab.parquet.tmp").write_bytes(b"PAR1\x00\x01 half a file")
    # Killed after renaming a segment into place, before the manifest named it.
    pq.write_table(conform("customMetrics", _metric_rows(7, name="orphan")), directory / "seg-orphan.parquet")
    # Killed while writing the manifest: a partial temp manifest.
    (directory / ".manifest.json.deadbeef.tmp").write_text('{"version": 99, "segments": [')

    assert store.row_count("customMetrics") == 10
    assert local_backend.run_query(COUNT_BY_BATCH).frame["n"].tolist() == [10]
    store.append("customMetrics", _metric_rows(5, name="after"))
    frame = local_backend.run_query(COUNT_BY_BATCH).frame
    assert dict(zip(frame["name"], frame["n"], strict=True)) == {"Total Tokens": 10, "after": 5}
    assert store.row_count("customMetrics") == 15


def test_a_corrupt_manifest_is_a_store_error_naming_the_file(store: Store) -> None:
    store.append("customMetrics", _metric_rows(1))
    (store.table_dir("customMetrics") / "manifest.json").write_text("{broken")
    with pytest.raises(StoreError, match=r"manifest\.json is not valid JSON"):
        store.segments("customMetrics")


# --- compaction ---------------------------------------------------------------------------


def test_compaction_merges_small_segments_and_keeps_every_row(
    store: Store, local_backend: LocalBackend
) -> None:
    for minute in range(6):
        store.append("customMetrics", _metric_rows(4, start=datetime(2026, 11, 24, 12, minute)))
    before = local_backend.run_query(COUNT_BY_BATCH).frame
    merged = store.compact("customMetrics")
    assert merged == 6
    assert len(store.segments("customMetrics")) == 1
    assert store.row_count("customMetrics") == 24
    after = local_backend.run_query(COUNT_BY_BATCH).frame
    pd.testing.assert_frame_equal(before, after)
    merged_file = pq.read_table(store.segment_paths("customMetrics")[0])
    timestamps = merged_file.column("timestamp").to_pylist()
    assert timestamps == sorted(timestamps)


def test_retired_segments_outlive_their_grace_period_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for minute in range(3):
        store.append("customMetrics", _metric_rows(2, start=datetime(2026, 11, 24, 12, minute)))
    old_files = [p.name for p in store.segment_paths("customMetrics")]
    store.compact("customMetrics")
    directory = store.table_dir("customMetrics")
    assert all((directory / name).exists() for name in old_files)  # a reader may still hold them
    monkeypatch.setattr(store_module, "RETIRED_GRACE_SECONDS", 0.0)
    time.sleep(0.01)
    store.append("customMetrics", _metric_rows(2, start=datetime(2026, 11, 24, 13)))
    store.compact("customMetrics")
    assert not any((directory / name).exists() for name in old_files)
    assert store.row_count("customMetrics") == 8


def test_a_reader_with_stale_views_recovers_when_compaction_deleted_its_files(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The views list yesterday's segments; compaction removed them; the query lists again."""
    for minute in range(3):
        store.append("customMetrics", _metric_rows(2, start=datetime(2026, 11, 24, 12, minute)))
    backend = LocalBackend(settings, store)
    backend.refresh()
    monkeypatch.setattr(store_module, "RETIRED_GRACE_SECONDS", -1.0)  # delete retired files at once
    store.compact("customMetrics")
    monkeypatch.setattr(backend, "refresh", _refresh_only_when_forced(backend))
    assert backend.run_query(COUNT_BY_BATCH).frame["n"].tolist() == [6]


def _refresh_only_when_forced(backend: LocalBackend):
    """Keep the stale views on the first attempt, as if compaction ran just after listing."""
    original = backend.refresh

    def refresh(force: bool = False) -> None:
        if force:
            original(force=True)

    return refresh


# --- one writer process, concurrent readers -----------------------------------------------


def test_a_writer_process_and_concurrent_readers_never_collide(
    settings: Settings, store: Store, local_backend: LocalBackend
) -> None:
    batches = 70  # passes COMPACT_AT (48): an automatic compaction happens mid-run
    writer = _start_writer(store.data_dir, "w1", batches)
    seen, errors = _read_until_done(local_backend, [writer])
    assert writer.returncode == 0, writer.stderr.read()
    assert not errors, errors[0]
    assert all(len(frames) > 5 for frames in seen), "the readers should have overlapped the writer"
    for frames in seen:
        for frame in frames:
            _assert_whole_batches_in_order(frame)
        totals = [int(frame["n"].sum()) for frame in frames]
        assert totals == sorted(totals), "a reader went back in time"
    final = local_backend.run_query(COUNT_BY_BATCH).frame
    _assert_whole_batches_in_order(final)
    assert int(final["n"].sum()) == batches * BATCH_ROWS == store.row_count("customMetrics")
    assert len(store.segments("customMetrics")) < batches


def test_compaction_under_concurrent_reads_loses_nothing(
    settings: Settings, store: Store, local_backend: LocalBackend
) -> None:
    """Compaction every 4 appends while two threads query: every read whole, final exact."""
    batches = 40
    writer = _start_writer(store.data_dir, "w1", batches, compact_at=4)
    seen, errors = _read_until_done(local_backend, [writer])
    assert writer.returncode == 0, writer.stderr.read()
    assert not errors, errors[0]
    for frames in seen:
        for frame in frames:
            _assert_whole_batches_in_order(frame)
    final = local_backend.run_query(COUNT_BY_BATCH).frame
    assert int(final["n"].sum()) == batches * BATCH_ROWS
    assert len(store.segments("customMetrics")) <= 4


def test_readers_writing_roll_ups_while_compaction_deletes_files_lose_nothing(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two readers (two backends, as two dashboard processes) write the roll-ups of the
    segments they read while the writer compacts and deletes retired files after 1 s."""
    monkeypatch.setattr(
        rollups, "MIN_ROWS", dict.fromkeys(rollups.MIN_ROWS, 0)
    )  # small data: roll-ups all the same
    readers = [LocalBackend(settings, store) for _ in range(2)]
    writer = _start_writer(store.data_dir, "w1", 60, compact_at=4, grace=1.0, pause=0.05)
    seen, errors = _read_until_done(readers, [writer])
    assert writer.returncode == 0, writer.stderr.read()
    assert not errors, errors[0]
    for frames in seen:
        for frame in frames:
            _assert_whole_batches_in_order(frame)
    monkeypatch.setattr(store_module, "RETIRED_GRACE_SECONDS", 1.0)
    store.compact("customMetrics")
    time.sleep(1.1)
    store.compact("customMetrics")  # past the grace period: only the live segments' roll-ups stay
    pivot = readers[0].run_query(readers[0].bind("usage_pivot", PIVOT_WINDOW)).frame
    assert int(pivot["calls"].sum()) == 60 * BATCH_ROWS
    live = {p.name for p in store.segment_paths("customMetrics")}
    rolled = {store_module.rolled_from(p.name) for p in store.rollup_dir("customMetrics").iterdir()}
    assert rolled == live


def test_two_writer_processes_lose_no_append(
    settings: Settings, store: Store, local_backend: LocalBackend
) -> None:
    writers = [_start_writer(store.data_dir, name, 25) for name in ("wa", "wb")]
    seen, errors = _read_until_done(local_backend, writers, readers=1)
    assert all(w.returncode == 0 for w in writers), [w.stderr.read() for w in writers]
    assert not errors, errors[0]
    for frames in seen:
        for frame in frames:
            _assert_whole_batches_in_order(frame)
    final = local_backend.run_query(COUNT_BY_BATCH).frame
    _assert_whole_batches_in_order(final)
    assert len(final) == 50
    assert int(final["n"].sum()) == 2 * 25 * BATCH_ROWS == store.row_count("customMetrics")


def test_arrow_tables_and_frames_append_like_rows(store: Store) -> None:
    rows = _metric_rows(3)
    as_text = [{**r, "customDimensions": json.dumps(r["customDimensions"])} for r in rows]
    store.append("customMetrics", pa.Table.from_pylist(as_text))
    store.append("customMetrics", pd.DataFrame(rows))
    tables = [pq.read_table(p).to_pylist() for p in store.segment_paths("customMetrics")]
    for table in tables:
        for row in table:
            row["customDimensions"] = json.loads(row["customDimensions"])
    assert tables[0] == tables[1]
    assert [r["valueSum"] for r in tables[0]] == [0.0, 1.0, 2.0]
