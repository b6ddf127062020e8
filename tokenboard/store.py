"""The local telemetry store: App Insights-shaped tables as Parquet segments.

Layout: ``<data_dir>/<table>/seg-*.parquet`` plus ``manifest.json`` naming the live
segments. A writer writes a segment to a temp file, renames it into place, then
swaps in a new manifest the same way, all under a file lock, so a reader in another
process sees either the old set of segments or the new one, never half a file.
Compaction merges small segments; the files it retires are deleted only after a
grace period, so a reader holding the previous manifest can still open them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tokenboard import appinsights
from tokenboard.appinsights import TABLES

COMPACT_AT = 48  # segments per table before small ones are merged
SMALL_SEGMENT_ROWS = 200_000
RETIRED_GRACE_SECONDS = 120.0
ROW_GROUP_ROWS = 122_880


class StoreError(RuntimeError):
    """The store cannot be read or written (with what to do about it)."""


@dataclass(frozen=True)
class Segment:
    file: str
    rows: int
    min_ts: str
    max_ts: str


class Store:
    """One data directory: append segments, list them, compact them."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)

    # --- paths and locking -------------------------------------------------------------

    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise StoreError(f"unknown table '{table}' (tables: {', '.join(TABLES)})")
        return self.data_dir / table

    @contextlib.contextmanager
    def _locked(self, table: str) -> Iterator[None]:
        directory = self.table_dir(table)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- manifest ----------------------------------------------------------------------

    def _manifest_path(self, table: str) -> Path:
        return self.table_dir(table) / "manifest.json"

    def _read_manifest(self, table: str) -> dict[str, Any]:
        try:
            manifest: dict[str, Any] = json.loads(self._manifest_path(table).read_text("utf-8"))
            return manifest
        except FileNotFoundError:
            return {"version": 0, "segments": [], "retired": []}
        except json.JSONDecodeError as exc:  # only a hand-edited file can get here
            raise StoreError(f"{self._manifest_path(table)} is not valid JSON: {exc}") from exc

    def _write_manifest(self, table: str, manifest: dict[str, Any]) -> None:
        _atomic_write_bytes(self._manifest_path(table), json.dumps(manifest, indent=1).encode())

    def version(self, table: str) -> int:
        return int(self._read_manifest(table)["version"])

    def segments(self, table: str) -> list[Segment]:
        return [Segment(**s) for s in self._read_manifest(table)["segments"]]

    def segment_paths(self, table: str) -> list[Path]:
        directory = self.table_dir(table)
        return [directory / s.file for s in self.segments(table)]

    def row_count(self, table: str) -> int:
        return sum(s.rows for s in self.segments(table))

    def is_empty(self) -> bool:
        return all(self.row_count(t) == 0 for t in TABLES)

    # --- writing -----------------------------------------------------------------------

    def append(self, table: str, data: pa.Table | object) -> Segment | None:
        """Write rows (an Arrow table, DataFrame or list of dicts) as one new segment."""
        self.table_dir(table)  # an unknown table is a StoreError
        arrow = appinsights.table(table, data)
        if arrow.num_rows == 0:
            return None
        arrow = arrow.sort_by("timestamp")
        with self._locked(table):
            segment = self._write_segment(table, arrow)
            manifest = self._read_manifest(table)
            manifest["segments"].append(segment.__dict__)
            manifest["version"] += 1
            self._write_manifest(table, manifest)
            if len(manifest["segments"]) >= COMPACT_AT:
                self._compact_locked(table)
        return segment

    def _write_segment(self, table: str, arrow: pa.Table) -> Segment:
        directory = self.table_dir(table)
        ts = arrow.column("timestamp")
        low, high = pc.min(ts).as_py(), pc.max(ts).as_py()
        name = f"seg-{low:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = directory / f".{name}.tmp"
        pq.write_table(arrow, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
        _fsync_file(tmp)
        os.replace(tmp, directory / name)
        return Segment(name, arrow.num_rows, low.isoformat(), high.isoformat())

    def compact(self, table: str) -> int:
        """Merge small segments into time-ordered larger ones; returns segments merged."""
        with self._locked(table):
            return self._compact_locked(table)

    def _compact_locked(self, table: str) -> int:
        manifest = self._read_manifest(table)
        directory = self.table_dir(table)
        small = [s for s in manifest["segments"] if s["rows"] < SMALL_SEGMENT_ROWS]
        if len(small) < 2:
            self._delete_retired(table, manifest)
            return 0
        merged = pa.concat_tables(pq.read_table(directory / s["file"]) for s in small)
        new_segment = self._write_segment(table, appinsights.table(table, merged).sort_by("timestamp"))
        names = {s["file"] for s in small}
        now = time.time()
        manifest["segments"] = [s for s in manifest["segments"] if s["file"] not in names]
        manifest["segments"].append(new_segment.__dict__)
        manifest["segments"].sort(key=lambda s: s["min_ts"])
        manifest["retired"] += [{"file": n, "at": now} for n in sorted(names)]
        manifest["version"] += 1
        self._write_manifest(table, manifest)
        self._delete_retired(table, manifest)
        return len(small)

    def _delete_retired(self, table: str, manifest: dict[str, Any]) -> None:
        """Delete retired files past their grace period (the caller rewrites the manifest)."""
        cutoff = time.time() - RETIRED_GRACE_SECONDS
        keep = []
        for entry in manifest["retired"]:
            if entry["at"] < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    (self.table_dir(table) / entry["file"]).unlink()
            else:
                keep.append(entry)
        manifest["retired"] = keep

    def clear(self) -> None:
        """Remove every segment of every table (used before re-seeding)."""
        for table in TABLES:
            with self._locked(table):
                manifest = self._read_manifest(table)
                now = time.time()
                manifest["retired"] += [{"file": s["file"], "at": now} for s in manifest["segments"]]
                manifest["segments"] = []
                manifest["version"] += 1
                self._write_manifest(table, manifest)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
