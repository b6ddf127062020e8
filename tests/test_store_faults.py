"""Faults against the local store: damaged segments, killed writers, lost or foreign manifests,
a read-only data directory. Real files, real DuckDB, real writer processes killed with SIGKILL
at exact points of a write. What must hold: no row counted twice, nothing committed lost, every
problem said in one sentence that names the file and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tokenboard import kql
from tokenboard import store as store_module
from tokenboard.appinsights import table as conform
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import ManifestError, ReadOnlyStoreError, Store, StoreError
from tokenboard.ui import errors

ROOT = Path(__file__).resolve().parent.parent
ROWS = 5  # request rows per batch
START = datetime(2026, 11, 24, 12, 0)
COUNT_IDS = kql.BoundQuery("count_ids", "requests | summarize n = count(), ids = dcount(id)")
WINDOW = ("--param", "start_time=2026-11-01T00:00:00Z", "--param", "end_time=2026-12-01T00:00:00Z")


def batch_rows(batch: int, rows: int = ROWS) -> list[dict]:
    """``rows`` gateway requests with ids ``<batch>-<n>``, one second apart."""
    return [
        {
            "timestamp": START + timedelta(minutes=batch, seconds=i),
            "id": f"{batch}-{i}",
            "name": "POST /ai/chat/completions",
            "resultCode": "200",
            "success": True,
            "customDimensions": {"Subscription Name": "müller-ağ-東京", "API Name": "ai"},
            "itemCount": 1,
        }
        for i in range(rows)
    ]


def stored_ids(store: Store) -> Counter:
    """Request ids over the live segments, read with pyarrow alone (independent of the queries)."""
    return Counter(
        i for p in store.segment_paths("requests") for i in pq.read_table(p).column("id").to_pylist()
    )


def leftovers(store: Store, table: str = "requests") -> list[str]:
    """What a table folder holds beyond its manifest, lock, live and retired segments and quarantine/."""
    manifest = json.loads((store.table_dir(table) / "manifest.json").read_text())
    known = {s["file"] for s in manifest["segments"]} | {r["file"] for r in manifest["retired"]}
    known |= {"manifest.json", ".lock", "quarantine"}
    return sorted(set(os.listdir(store.table_dir(table))) - known)


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": b"PAR1 this is not a segment", "truncated": data[: len(data) // 2], "empty": b""}[how]
    )


def one_line(stream: bytes, kind: str = "error") -> str:
    lines = stream.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"tokenboard: {kind}: ") and "Traceback" not in lines[0]
    return lines[0]


# --- a segment that cannot be read ---------------------------------------------------------


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
def test_an_unreadable_segment_is_set_aside_and_queries_run_on_the_rest(
    store: Store, settings: Settings, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    for batch in range(3):
        store.append("requests", batch_rows(batch))
    bad = store.segments("requests")[1]
    damage(store.table_dir("requests") / bad.file, how)
    backend = LocalBackend(settings, Store(settings.store.data_dir))

    with caplog.at_level(logging.WARNING, logger="tokenboard"):
        frame = backend.run_query(COUNT_IDS).frame
    assert frame["n"].tolist() == [2 * ROWS] and frame["ids"].tolist() == [2 * ROWS]
    aside = store.table_dir("requests") / "quarantine" / bad.file
    assert aside.is_file() and not (store.table_dir("requests") / bad.file).exists()
    assert json.loads(aside.with_name(bad.file + ".json").read_text())["rows"] == ROWS
    assert len([r for r in caplog.records if "Set aside" in r.message]) == 1
    [notice] = backend.notices()
    assert str(aside) in notice and f"{ROWS} rows are left out of every query" in notice
    assert store.row_count("requests") == 2 * ROWS
    assert backend.run_query(COUNT_IDS).frame["n"].tolist() == [2 * ROWS]  # and stays so


@pytest.mark.parametrize("round_", range(20))
def test_queries_at_once_over_an_unreadable_segment_all_run_on_the_rest(
    store: Store, settings: Settings, round_: int
) -> None:
    """A page's sections query at once: when one sets the segment aside, the others retry on the rest."""
    for batch in range(3):
        store.append("requests", batch_rows(batch))
    damage(store.table_dir("requests") / store.segments("requests")[1].file, "garbage")
    backend = LocalBackend(settings, Store(settings.store.data_dir))
    barrier = threading.Barrier(6)

    def count() -> list[int]:
        barrier.wait()
        return backend.run_query(COUNT_IDS).frame["n"].tolist()

    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(lambda _: count(), range(6)))
    assert counts == [[2 * ROWS]] * 6


def test_a_set_aside_segment_put_back_is_counted_again(store: Store, settings: Settings) -> None:
    for batch in range(2):
        store.append("requests", batch_rows(batch))
    path = store.segment_paths("requests")[0]
    good = path.read_bytes()
    damage(path, "garbage")
    backend = LocalBackend(settings, Store(settings.store.data_dir))
    assert backend.run_query(COUNT_IDS).frame["n"].tolist() == [ROWS]

    (path.parent / "quarantine" / path.name).unlink()
    path.write_bytes(good)  # a good copy from a backup
    reopened = Store(settings.store.data_dir)
    assert reopened.row_count("requests") == 2 * ROWS
    assert reopened.notices() == [] and stored_ids(reopened) == Counter(
        f"{b}-{i}" for b in range(2) for i in range(ROWS)
    )


def test_deleting_a_set_aside_segment_dismisses_its_warning(store: Store, settings: Settings) -> None:
    store.append("requests", batch_rows(0))
    store.append("requests", batch_rows(1))
    damage(store.segment_paths("requests")[0], "garbage")
    backend = LocalBackend(settings, Store(settings.store.data_dir))
    backend.run_query(COUNT_IDS)
    [aside] = store.set_aside()
    aside.path.unlink()
    assert store.notices() == []
    Store(settings.store.data_dir).row_count("requests")  # recovery on open tidies the note too
    assert list((store.table_dir("requests") / "quarantine").iterdir()) == []


def test_a_segment_deleted_by_hand_is_reported_missing(store: Store, settings: Settings) -> None:
    store.append("requests", batch_rows(0))
    store.append("requests", batch_rows(1))
    store.segment_paths("requests")[1].unlink()
    backend = LocalBackend(settings, Store(settings.store.data_dir))
    assert backend.run_query(COUNT_IDS).frame["n"].tolist() == [ROWS]
    [notice] = backend.notices()
    assert "is missing" in notice and f"{ROWS} rows" in notice


def test_compaction_sets_an_unreadable_segment_aside_and_the_append_stands(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store_module, "COMPACT_AT", 4)
    for batch in range(3):
        store.append("requests", batch_rows(batch))
    damage(store.segment_paths("requests")[0], "garbage")
    with caplog.at_level(logging.WARNING, logger="tokenboard"):
        segment = store.append("requests", batch_rows(3))  # reaches COMPACT_AT: the merge meets the bad file
    assert segment is not None
    assert len(store.segments("requests")) == 1  # the three good ones merged
    assert stored_ids(store) == Counter(f"{b}-{i}" for b in (1, 2, 3) for i in range(ROWS))
    [set_aside] = [r.message for r in caplog.records if "Set aside" in r.message]
    assert f"{ROWS} rows" in set_aside


def test_a_failing_compaction_never_fails_the_append_and_logs_once(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "COMPACT_AT", 2)
    monkeypatch.setattr(Store, "_compact_locked", disk_full)
    with caplog.at_level(logging.WARNING, logger="tokenboard"):
        for batch in range(5):
            assert store.append("requests", batch_rows(batch)) is not None
    assert sum(stored_ids(store).values()) == 5 * ROWS
    assert len([r for r in caplog.records if "Compacting requests failed" in r.message]) == 1


def test_a_batch_is_written_at_most_once(store: Store) -> None:
    first = store.append("requests", batch_rows(0), batch_id="gw-1")
    again = store.append("requests", batch_rows(0), batch_id="gw-1")
    assert first is not None and again is None
    store.append("requests", batch_rows(1), batch_id="gw-2")
    assert max(stored_ids(store).values()) == 1 and store.row_count("requests") == 2 * ROWS


def test_a_failed_manifest_write_leaves_no_segment_behind(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append("requests", batch_rows(0))

    def disk_full(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "_atomic_write_bytes", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.append("requests", batch_rows(1), batch_id="retry-me")
    monkeypatch.undo()
    assert leftovers(store) == []
    store.append("requests", batch_rows(1), batch_id="retry-me")
    assert sum(stored_ids(Store(store.data_dir)).values()) == 2 * ROWS


# --- writers killed at exact points ---------------------------------------------------------

# Appends `batches` batches of requests, printing "ok <batch>" after each; the last append stops
# (sleeps, to be killed) just before the os.replace named by `stop_at`.
KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from datetime import datetime, timedelta
    from tokenboard import store as store_module
    from tokenboard.store import Store

    data_dir, stop_at, batches, compact_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store_module.COMPACT_AT = compact_at
    real_replace, last, manifests = os.replace, [False], [0]

    def replace(src, dst):
        source, target = os.path.basename(src), os.path.basename(dst)
        if last[0]:
            manifests[0] += target == "manifest.json"
            if (stop_at == "segment-written" and source.startswith(".seg-")
                    or stop_at == "segment-renamed" and target == "manifest.json"
                    or stop_at == "merge-renamed" and manifests[0] == 2):
                print("stopped", flush=True)
                time.sleep(600)
        real_replace(src, dst)

    store_module.os.replace = replace
    store = Store(data_dir)
    start = datetime(2026, 11, 24, 12, 0)
    for b in range(batches):
        last[0] = b == batches - 1
        rows = [{"timestamp": start + timedelta(minutes=b, seconds=i), "id": f"{b}-{i}", "itemCount": 1}
                for i in range(5)]
        store.append("requests", rows)
        print("ok", b, flush=True)
    """
)


def kill_writer_at(data_dir: Path, stop_at: str, batches: int, compact_at: int = 48) -> list[str]:
    """Run the writer until it stops at ``stop_at``, SIGKILL it; the batches it saw committed."""
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(data_dir), stop_at, str(batches), str(compact_at)],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked = []
    for line in writer.stdout:
        if line.startswith("stopped"):
            break
        acked.append(line.split()[1])
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    assert writer.returncode == -signal.SIGKILL, writer.stderr.read()
    return acked


@pytest.mark.parametrize(
    ("stop_at", "leftover"),
    [
        ("segment-written", ".seg-"),  # a whole temp segment: adopted, its rows were never counted
        ("segment-renamed", "seg-"),  # a segment no manifest names: adopted
        ("merge-renamed", "seg-"),  # a merge not yet in the manifest: its rows are counted, discarded
    ],
)
def test_leftovers_of_a_killed_writer_are_adopted_or_removed_on_open(
    data_dir: Path, settings: Settings, stop_at: str, leftover: str
) -> None:
    batches = 4
    acked = kill_writer_at(data_dir, stop_at, batches, compact_at=batches)
    killed = Store(data_dir)
    before = json.loads((killed.table_dir("requests") / "manifest.json").read_text())
    named = {s["file"] for s in before["segments"]} | {r["file"] for r in before["retired"]}
    left = [n for n in os.listdir(killed.table_dir("requests")) if n.startswith(leftover) and n not in named]
    assert len(left) == 1, left  # the kill left exactly what this case is about

    store = Store(data_dir)  # recovery on open
    ids = stored_ids(store)
    assert max(ids.values()) == 1, "a row was counted twice"
    assert set(ids) == {f"{b}-{i}" for b in range(batches) for i in range(ROWS)}
    assert len(acked) == batches - 1  # killed inside the last append (after its commit, for a merge)
    assert leftovers(store) == [] and not (store.table_dir("requests") / "quarantine").exists()
    frame = LocalBackend(settings, store).run_query(COUNT_IDS).frame
    assert frame["n"].tolist() == frame["ids"].tolist() == [batches * ROWS]


def test_leftovers_that_cannot_be_placed_are_set_aside_never_counted(
    store: Store, settings: Settings
) -> None:
    store.append("requests", batch_rows(0))
    directory = store.table_dir("requests")
    (directory / ".seg-20261124T120000-0123456789ab.parquet.tmp").write_bytes(b"PAR1\x00\x01 half a file")
    (directory / ".manifest.json.deadbeef.tmp").write_text('{"version": 99, "segments": [')
    pq.write_table(conform("requests", batch_rows(0)), directory / "seg-no-origin.parquet")  # foreign
    (directory / "seg-garbage.parquet").write_bytes(b"not parquet")

    reopened = Store(store.data_dir)
    assert stored_ids(reopened) == Counter(f"0-{i}" for i in range(ROWS))
    assert leftovers(reopened) == []
    notices = sorted(reopened.notices())
    assert len(notices) == 2
    assert "seg-garbage.parquet could not be read" in notices[0] and "an unknown number of rows" in notices[0]
    assert (
        "seg-no-origin.parquet (5 rows) was left behind" in notices[1]
        and "may already be counted" in notices[1]
    )
    assert LocalBackend(settings, reopened).run_query(COUNT_IDS).frame["n"].tolist() == [ROWS]


# --- the manifest lost or replaced ---------------------------------------------------------


def test_a_deleted_manifest_is_rebuilt_counting_merged_rows_once(
    data_dir: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(data_dir)
    for batch in range(6):
        store.append("requests", batch_rows(batch))
    store.compact("requests")  # one merged segment; the six it replaced stay on disk for a while
    store.append("requests", batch_rows(6))
    store.append("requests", batch_rows(7))
    expected = stored_ids(store)
    assert len(os.listdir(store.table_dir("requests"))) > len(store.segments("requests")) + 2
    reader = LocalBackend(settings, store)
    assert reader.run_query(COUNT_IDS).frame["n"].tolist() == [8 * ROWS]

    (store.table_dir("requests") / "manifest.json").unlink()
    with caplog.at_level(logging.WARNING, logger="tokenboard"):
        # A reader that was already open sees the same rows, not an empty store.
        assert reader.run_query(COUNT_IDS).frame["n"].tolist() == [8 * ROWS]
    assert any("Rebuilt the missing" in r.message for r in caplog.records)
    assert stored_ids(Store(data_dir)) == expected
    (store.table_dir("requests") / "manifest.json").unlink()
    assert Store(data_dir).row_count("requests") == 8 * ROWS  # and so does a fresh one


def test_a_deleted_manifest_over_segments_of_unknown_origin_is_reported(run, data_dir: Path) -> None:
    directory = data_dir / "requests"
    directory.mkdir(parents=True)
    pq.write_table(conform("requests", batch_rows(0)), directory / "seg-20261124T120000-old.parquet")
    with pytest.raises(StoreError, match=r"manifest\.json is missing.*restore manifest\.json from a backup"):
        Store(data_dir).row_count("requests")
    result = run("query", "request_totals", *WINDOW, data_dir=data_dir)
    assert result.returncode == 1 and "manifest.json is missing" in one_line(result.stderr)
    assert set(os.listdir(directory)) == {"seg-20261124T120000-old.parquet", ".lock"}  # nothing moved


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ([], "a JSON list, not an object"),
        ({"segments": []}, "'version' is not a whole number"),
        ({"version": 1, "segments": {}}, "'segments' is not a list"),
        (
            {"version": 1, "segments": [{"file": "../../etc/passwd", "rows": 1, "min_ts": "", "max_ts": ""}]},
            "segment 1",
        ),
        (
            {"version": 1, "segments": [{"file": "seg-a.parquet", "rows": -1, "min_ts": "", "max_ts": ""}]},
            "segment 1",
        ),
        ({"version": 1, "segments": [], "retired": [{"file": "seg-a.parquet"}]}, "'retired'"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_a_clear_error_and_exit_2(
    run, data_dir: Path, manifest: object, problem: str
) -> None:
    Store(data_dir).append("requests", batch_rows(0))
    (data_dir / "requests" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=f"is not a tokenboard manifest \\({problem}"):
        Store(data_dir).segments("requests")
    result = run("query", "request_totals", *WINDOW, data_dir=data_dir)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "manifest.json is not a tokenboard manifest" in line and "restore it from a backup" in line


# --- read-only data directory ---------------------------------------------------------------


@pytest.fixture
def read_only() -> list[str]:
    """A command prefix that runs a process with its data directory (the last argument given to
    the prefix) mounted read-only, in a private mount namespace: a real EROFS, even for root."""
    probe = ["unshare", "-rm", "true"]
    if shutil.which("unshare") is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("needs unshare with user namespaces for a read-only mount")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script]


def test_a_read_only_data_dir_is_reported_as_read_only(run, data_dir: Path, read_only: list[str]) -> None:
    Store(data_dir).append("requests", batch_rows(0))
    export = data_dir.parent / "requests.csv"
    export.write_text("timestamp,id,resultCode,itemCount\n2026-11-24T12:30:00Z,x,200,1\n")
    result = run(
        "import", str(export), "--table", "requests", data_dir=data_dir, prefix=[*read_only, str(data_dir)]
    )
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"{data_dir} is read-only (Read-only file system" in line and "cannot be read" not in line
    assert "make it writable, or set data_dir to a writable directory" in line
    assert Store(data_dir).row_count("requests") == ROWS


def test_a_read_only_store_is_still_read_leftovers_and_all(run, data_dir: Path, read_only: list[str]) -> None:
    store = Store(data_dir)
    store.append("requests", batch_rows(0))
    (store.table_dir("requests") / ".manifest.json.deadbeef.tmp").write_text("{")
    result = run("query", "request_totals", *WINDOW, data_dir=data_dir, prefix=[*read_only, str(data_dir)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[1].split(",")[0] == str(ROWS)
    assert (store.table_dir("requests") / ".manifest.json.deadbeef.tmp").exists()  # untouched


def test_a_damaged_segment_in_a_read_only_store_is_one_sentence_with_advice_and_no_sql(
    run, data_dir: Path, read_only: list[str]
) -> None:
    store = Store(data_dir)
    store.append("requests", batch_rows(0))
    store.append("requests", batch_rows(1))
    damage(store.segment_paths("requests")[0], "garbage")
    result = run("query", "request_totals", *WINDOW, data_dir=data_dir, prefix=[*read_only, str(data_dir)])
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert str(store.segment_paths("requests")[0]) in line and "is read-only" in line
    assert "Restore the file from a backup" in line
    assert not any(word in line for word in ("SELECT", "read_parquet", "LINE 1", "^^^"))


def test_the_dashboard_says_read_only_not_cannot_be_read(data_dir: Path) -> None:
    error = store_module._read_only(
        OSError(30, "Read-only file system", str(data_dir / "requests")), data_dir
    )
    assert isinstance(error, ReadOnlyStoreError)
    text = errors.message(error)
    assert text.startswith("**The local data store is read-only.**") and "cannot be read" not in text


# --- what the CLI says about a set-aside segment ---------------------------------------------


def test_the_cli_names_a_set_aside_segment_in_one_warning_line(run, data_dir: Path) -> None:
    store = Store(data_dir)
    for batch in range(3):
        store.append("requests", batch_rows(batch))
    bad = store.segment_paths("requests")[2]
    damage(bad, "truncated")
    for _ in range(2):  # the run that sets it aside, and every run after
        result = run("query", "request_totals", *WINDOW, data_dir=data_dir)
        assert result.returncode == 0
        assert result.stdout.decode().splitlines()[1].split(",")[0] == str(2 * ROWS)
        line = one_line(result.stderr, "warning")
        assert (
            f"{bad.parent / 'quarantine' / bad.name} could not be read" in line
            and f"{ROWS} rows are left out" in line
        )
    result = run("report", "throttling_summary", *WINDOW, data_dir=data_dir)
    assert result.returncode == 0 and "could not be read" in one_line(result.stderr, "warning")
