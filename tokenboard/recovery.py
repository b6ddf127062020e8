"""What a stopped writer leaves in a table folder, and whether its rows are already counted.

A writer killed at the wrong moment leaves a temp file, or a segment that no manifest names
(renamed into place, then killed before the manifest was swapped). Each segment carries in its
Parquet footer where it came from: ``tokenboard.batch`` (the append it holds) or
``tokenboard.merged_from`` (the segments a compaction merged into it). That is how recovery
knows whether a leftover's rows are already counted:

- an append whose batch the manifest has not recorded never committed: adopt it;
- an append whose batch is recorded, or a merge whose sources are all accounted for (live,
  retired, or gone), duplicates rows the store already has: discard it;
- anything else (no footer record, a source set aside): set it aside, never guess.

The same facts rebuild a lost manifest: every readable segment that no merge covers.
This module decides; ``Store`` does the file operations under its lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH_KEY = b"tokenboard.batch"
MERGED_KEY = b"tokenboard.merged_from"


@dataclass(frozen=True)
class SegmentFile:
    """What a segment file on disk holds, read whole (a footer alone can hide damaged pages)."""

    name: str
    rows: int | None = None
    min_ts: str | None = None
    max_ts: str | None = None
    batch: str | None = None
    merged_from: tuple[str, ...] | None = None
    error: str | None = None  # why it cannot be read

    def entry(self) -> dict[str, Any]:
        """The manifest's record of this file."""
        return {"file": self.name, "rows": self.rows, "min_ts": self.min_ts, "max_ts": self.max_ts}


def footer_metadata(batch: str | None = None, merged_from: Iterable[str] | None = None) -> dict[bytes, bytes]:
    if merged_from is not None:
        return {MERGED_KEY: json.dumps(sorted(merged_from)).encode()}
    return {BATCH_KEY: (batch or "").encode()}


def inspect(path: Path, schema: pa.Schema, name: str | None = None) -> SegmentFile:
    """Read a segment file row group by row group; ``error`` says why it cannot be used."""
    name = name or path.name
    try:
        parquet = pq.ParquetFile(path)
        if not parquet.schema_arrow.remove_metadata().equals(schema):
            return SegmentFile(name, rows=parquet.metadata.num_rows, error="its columns are not this table's")
        low = high = None
        for group in range(parquet.num_row_groups):
            timestamps = parquet.read_row_group(group).column("timestamp")
            if len(timestamps):
                lo, hi = pc.min(timestamps).as_py(), pc.max(timestamps).as_py()
                low = lo if low is None or (lo is not None and lo < low) else low
                high = hi if high is None or (hi is not None and hi > high) else high
        metadata = parquet.schema_arrow.metadata or {}
        merged = json.loads(metadata[MERGED_KEY]) if MERGED_KEY in metadata else None
        batch = metadata[BATCH_KEY].decode() if BATCH_KEY in metadata else None
    except (OSError, pa.ArrowException, ValueError) as exc:
        return SegmentFile(name, error=reason(exc))
    return SegmentFile(
        name,
        rows=parquet.metadata.num_rows,
        min_ts=low.isoformat() if low else "",
        max_ts=high.isoformat() if high else "",
        batch=batch or None,
        merged_from=tuple(merged) if merged is not None else None,
    )


def reason(exc: BaseException, path: Path | None = None) -> str:
    """An engine's error as a short phrase: its first line without engine prefix or SQL
    (and without ``path``, when the phrase goes next to it)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in ("Invalid Input Error: ", "IO Error: ", "Invalid: ", "IOError: "):
        text = text.removeprefix(prefix)
    if path is not None:
        _, found, tail = text.partition(f"'{path}': ")
        text = tail if found else text.replace(f"'{path}'", "").replace(str(path), "")
    return " ".join(text.split(". ")[0].split()).rstrip(".")


@dataclass
class Plan:
    """What to do with each leftover segment file."""

    adopt: list[SegmentFile]
    discard: list[tuple[SegmentFile, str]]  # rows already counted: (file, why)
    set_aside: list[tuple[SegmentFile, str]]  # cannot be read or placed: (file, why)


def plan(
    manifest: dict[str, Any], leftovers: list[SegmentFile], restored: set[str], quarantined: set[str]
) -> Plan:
    """Decide for segment files the manifest does not name (``restored``: moved back from quarantine)."""
    live = {s["file"] for s in manifest["segments"]}
    present = live | {f.name for f in leftovers}
    counted_batches = set(manifest["batches"])
    result = Plan([], [], [])
    for leftover in leftovers:
        if leftover.error is not None:
            result.set_aside.append((leftover, leftover.error))
        elif leftover.name in restored:
            result.adopt.append(leftover)
        elif leftover.merged_from is not None:
            sources = set(leftover.merged_from)  # live, retired or deleted: all counted elsewhere
            if sources & quarantined or (sources & present) - live:
                result.set_aside.append((leftover, "it is a merge whose sources cannot all be accounted for"))
            else:
                result.discard.append((leftover, "it is an unfinished merge of segments the store has"))
        elif leftover.batch is None:
            result.set_aside.append((leftover, "it carries no record of its origin"))
        elif leftover.batch in counted_batches:
            result.discard.append((leftover, "it is a second copy of a batch the store has"))
        else:
            counted_batches.add(leftover.batch)
            result.adopt.append(leftover)
    return result


def rebuild(files: list[SegmentFile]) -> tuple[list[SegmentFile], list[SegmentFile], list[SegmentFile]]:
    """A lost manifest from the segment files: (live, superseded by a merge, unreadable).

    Raises ``ValueError`` naming the files whose origin is unknown: without it, a segment
    merged into another cannot be told from a live one, and guessing would double rows.
    """
    readable = [f for f in files if f.error is None]
    unknown = [f.name for f in readable if f.batch is None and f.merged_from is None]
    if unknown:
        raise ValueError(", ".join(sorted(unknown)[:3]) + (" ..." if len(unknown) > 3 else ""))
    covered = {name for f in readable if f.merged_from for name in f.merged_from}
    live, superseded, seen = [], [], set()
    for f in sorted(readable, key=lambda f: f.name):
        if f.name in covered or (f.batch is not None and f.batch in seen):
            superseded.append(f)
        else:
            live.append(f)
            seen.add(f.batch)
    return live, superseded, [f for f in files if f.error is not None]
