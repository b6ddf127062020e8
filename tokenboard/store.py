"""The local telemetry store: App Insights-shaped tables as Parquet segments.

Layout: ``<data_dir>/<table>/seg-*.parquet`` plus ``manifest.json`` naming the live
segments. A writer writes a segment to a temp file, renames it into place, then
swaps in a new manifest the same way, all under a file lock, so a reader in another
process sees either the old set of segments or the new one, never half a file.
Compaction merges small segments; the files it retires are deleted only after a
grace period, so a reader holding the previous manifest can still open them.

``<table>/rollups/`` holds files derived from one segment each, named after it
(``<segment stem>@...``, tokenboard/backends/rollups.py): readers write them (temp file,
then rename) and never change them; the store deletes them with their segment, when it
sets the segment aside, and when it is cleared. Neither recovery nor a manifest rebuild
looks in there: a roll-up is derived data, written again when a query needs it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tokenboard import appinsights, recovery
from tokenboard.appinsights import SCHEMAS, TABLES

COMPACT_AT = 48  # segments per table before small ones are merged
SMALL_SEGMENT_ROWS = 200_000
RETIRED_GRACE_SECONDS = 120.0
ROW_GROUP_ROWS = 122_880
BATCHES_KEPT = 1_000  # batch ids the manifest remembers: a retry within them is not written twice
QUARANTINE = "quarantine"
SEGMENT_NAME = re.compile(r"seg-[A-Za-z0-9_.-]+\.parquet")
ROLLUPS = "rollups"
ROLLUP_OF = "@"  # <segment stem>@<what>.parquet: never in a segment's name
READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
MANIFEST_ADVICE = "restore it from a backup, or delete it and tokenboard rebuilds it from the segment files"

log = logging.getLogger(__name__)
# A manifest.json, and one segment's record in it (file, rows, min_ts, max_ts), as JSON objects.
Manifest = dict[str, Any]
Entry = dict[str, Any]


class StoreError(RuntimeError):
    """The store cannot be read or written (with what to do about it)."""

    title = "The local data store cannot be read."


class ManifestError(StoreError):
    """A manifest that is JSON but not of the store's shape (edited by hand?): bad input."""

    title = "The local data store's manifest is not one tokenboard wrote."


class ReadOnlyStoreError(StoreError):
    """The data directory cannot be written: permissions, or a read-only file system."""

    title = "The local data store is read-only."


@dataclass(frozen=True)
class Segment:
    file: str
    rows: int
    min_ts: str
    max_ts: str


@dataclass(frozen=True)
class SetAside:
    """A segment taken out of the store, as its note in ``<table>/quarantine/`` records it."""

    path: Path  # the file in quarantine/, or where a missing file was
    rows: int | None
    kind: str  # unreadable | unplaced | missing
    why: str

    @property
    def held(self) -> str:
        if self.rows is None:
            return "an unknown number of rows"
        return f"{self.rows:,} row" + ("" if self.rows == 1 else "s")

    def notice(self) -> str:
        """One line for people: what happened, what it costs, what to do."""
        left_out = f"{self.held} {'is' if self.rows == 1 else 'are'} left out of every query"
        if self.kind == "missing":
            return (
                f"Segment {self.path} is missing: {left_out}. Put the file back to count them again, "
                f"or delete {self.path.parent / QUARANTINE / self.path.name}.json to dismiss this warning."
            )
        home = self.path.parent.parent
        if self.kind == "unplaced":
            return (
                f"Segment {self.path} ({self.held}) was left behind by a stopped writer and set aside "
                f"because {self.why}; it may already be counted. Move it back into {home}/ to count "
                "it, or delete it to dismiss this warning."
            )
        return (
            f"Segment {self.path} could not be read ({self.why}) and was set aside: {left_out}. "
            f"Put a good copy back in {home}/ to count them again, or delete it to dismiss this warning."
        )


class Store:
    """One data directory: append segments, list them, compact them, set bad ones aside."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self._opened: set[str] = set()  # tables tidied after stopped writers by this instance
        self._housekeeping_failure = ""

    # --- paths and locking -------------------------------------------------------------

    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise StoreError(f"unknown table '{table}' (tables: {', '.join(TABLES)})")
        return self.data_dir / table

    def rollup_dir(self, table: str) -> Path:
        """Where roll-ups of the table's segments live (``<segment stem>@*``)."""
        return self.table_dir(table) / ROLLUPS

    @contextlib.contextmanager
    def _locked(self, table: str) -> Iterator[None]:
        """The table's write lock; the first time, tidy what stopped writers left behind."""
        directory = self.table_dir(table)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle = open(directory / ".lock", "a+")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _read_only(exc, self.data_dir) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if table not in self._opened:
                    self._recover_locked(table)
                    self._opened.add(table)
                yield
            except OSError as exc:
                raise _read_only(exc, self.data_dir) from None
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open(self, table: str) -> None:
        """Recovery on open for readers; a read-only store is read as it is."""
        if table in self._opened or not self.table_dir(table).is_dir():
            return
        try:
            with self._locked(table):
                pass
        except ReadOnlyStoreError:
            self._opened.add(table)

    # --- manifest ----------------------------------------------------------------------

    def _manifest_path(self, table: str) -> Path:
        return self.table_dir(table) / "manifest.json"

    def _load_manifest(self, table: str) -> Manifest | None:
        """The manifest as written, checked for shape; None when there is none."""
        path = self._manifest_path(table)
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # damaged on disk: a store failure
            raise StoreError(f"{path} is not valid JSON ({exc}): {MANIFEST_ADVICE}") from None
        problem = _manifest_problem(data)
        if problem:
            raise ManifestError(f"{path} is not a tokenboard manifest ({problem}): {MANIFEST_ADVICE}")
        manifest: Manifest = data
        manifest.setdefault("retired", [])
        manifest.setdefault("batches", [])
        return manifest

    def _read_manifest(self, table: str) -> Manifest:
        """The manifest for readers (no lock); a lost one is rebuilt, never read as empty."""
        self._open(table)
        manifest = self._load_manifest(table)
        if manifest is not None or not self._segment_names(table):
            return manifest or _empty_manifest()
        try:
            with self._locked(table):
                return self._manifest_locked(table)
        except ReadOnlyStoreError:
            raise StoreError(
                f"{self._manifest_path(table)} is missing and {self.data_dir} is read-only, so it cannot "
                "be rebuilt from the segment files: make the directory writable once, or restore "
                "manifest.json from a backup"
            ) from None

    def _manifest_locked(self, table: str) -> Manifest:
        manifest = self._load_manifest(table)
        if manifest is None and self._segment_names(table):
            manifest = self._rebuild_locked(table)
        return manifest or _empty_manifest()

    def _write_manifest(self, table: str, manifest: Manifest) -> None:
        _atomic_write_bytes(self._manifest_path(table), json.dumps(manifest, indent=1).encode())

    def version(self, table: str) -> int:
        return int(self._read_manifest(table)["version"])

    def segments(self, table: str) -> list[Segment]:
        return [
            Segment(s["file"], s["rows"], s["min_ts"], s["max_ts"])
            for s in self._read_manifest(table)["segments"]
        ]

    def segment_paths(self, table: str) -> list[Path]:
        directory = self.table_dir(table)
        return [directory / s.file for s in self.segments(table)]

    def row_count(self, table: str) -> int:
        return sum(s.rows for s in self.segments(table))

    def is_empty(self) -> bool:
        return all(self.row_count(t) == 0 for t in TABLES)

    # --- writing -----------------------------------------------------------------------

    def append(self, table: str, data: pa.Table | object, batch_id: str | None = None) -> Segment | None:
        """Write rows (an Arrow table, DataFrame or list of dicts) as one new segment.

        With ``batch_id``, a batch the manifest has already recorded is not written again
        (returns None): a writer that retries after an error cannot double its rows.
        Compaction afterwards is housekeeping: a failure there is logged, never raised.
        """
        self.table_dir(table)  # an unknown table is a StoreError
        arrow = appinsights.table(table, data)
        if arrow.num_rows == 0:
            return None
        arrow = arrow.sort_by("timestamp")
        batch = batch_id or uuid.uuid4().hex
        with self._locked(table):
            manifest = self._manifest_locked(table)
            if batch in manifest["batches"]:
                return None
            segment = self._write_segment(table, arrow, recovery.footer_metadata(batch=batch), batch)
            manifest["segments"].append(segment.__dict__)
            manifest["batches"] = [*manifest["batches"], batch][-BATCHES_KEPT:]
            manifest["version"] += 1
            try:
                self._write_manifest(table, manifest)
            except BaseException:  # not committed: leave no segment that looks like a lost append
                with contextlib.suppress(OSError):
                    (self.table_dir(table) / segment.file).unlink()
                raise
            if len(manifest["segments"]) >= COMPACT_AT:
                self._housekeep_locked(table)
        return segment

    def _write_segment(
        self, table: str, arrow: pa.Table, metadata: dict[bytes, bytes], name_seed: str | None = None
    ) -> Segment:
        """Write a segment file atomically; the same ``name_seed`` (batch) gives the same name."""
        directory = self.table_dir(table)
        ts = arrow.column("timestamp")
        low, high = pc.min(ts).as_py(), pc.max(ts).as_py()
        tag = hashlib.sha256(name_seed.encode()).hexdigest()[:12] if name_seed else uuid.uuid4().hex[:12]
        name = f"seg-{low:%Y%m%dT%H%M%S}-{tag}.parquet"
        tmp = directory / f".{name}.tmp"
        try:
            pq.write_table(
                arrow.replace_schema_metadata(metadata),
                tmp,
                row_group_size=ROW_GROUP_ROWS,
                compression="zstd",
            )
            _fsync_file(tmp)
            os.replace(tmp, directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return Segment(name, arrow.num_rows, low.isoformat(), high.isoformat())

    def _housekeep_locked(self, table: str) -> None:
        """Compact after an append; a failure is logged once per cause and never fails the append."""
        try:
            self._compact_locked(table)
        except Exception as exc:  # housekeeping: the rows are stored whatever happens here
            failure = f"{type(exc).__name__}: {recovery.reason(exc)}"
            if failure != self._housekeeping_failure:
                log.warning(
                    "Compacting %s failed (%s); the rows are stored, it will try again", table, failure
                )
            self._housekeeping_failure = failure
        else:
            self._housekeeping_failure = ""

    def compact(self, table: str) -> int:
        """Merge small segments into time-ordered larger ones; returns segments merged."""
        with self._locked(table):
            return self._compact_locked(table)

    def _compact_locked(self, table: str) -> int:
        manifest = self._manifest_locked(table)
        directory = self.table_dir(table)
        small = [s for s in manifest["segments"] if s["rows"] < SMALL_SEGMENT_ROWS]
        if len(small) < 2:
            self._delete_retired(table, manifest)
            return 0
        tables, names = [], []
        for entry in small:
            try:
                tables.append(pq.read_table(directory / entry["file"]))
                names.append(entry["file"])
            except (OSError, pa.ArrowException) as exc:  # one bad file must not stop the rest
                reason = recovery.reason(exc, directory / entry["file"])
                self._set_aside_live_locked(table, manifest, entry, reason)
        if len(names) < 2:
            if len(names) < len(small):
                self._write_manifest(table, manifest)
            return 0
        merged = appinsights.table(table, pa.concat_tables(tables)).sort_by("timestamp")
        new_segment = self._write_segment(table, merged, recovery.footer_metadata(merged_from=names))
        now = time.time()
        manifest["segments"] = [s for s in manifest["segments"] if s["file"] not in set(names)]
        manifest["segments"].append(new_segment.__dict__)
        manifest["segments"].sort(key=lambda s: s["min_ts"])
        manifest["retired"] += [{"file": n, "at": now} for n in sorted(names)]
        manifest["version"] += 1
        self._write_manifest(table, manifest)
        self._delete_retired(table, manifest)
        return len(names)

    def _delete_retired(self, table: str, manifest: Manifest) -> None:
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
        self._delete_rollups(table, manifest, cutoff)

    def _delete_rollups(self, table: str, manifest: Manifest, cutoff: float) -> None:
        """Delete roll-ups (and readers' unfinished temp files) older than ``cutoff`` whose
        segment is no longer listed."""
        listed = {s["file"] for s in manifest["segments"]} | {r["file"] for r in manifest["retired"]}
        for path in self._rollup_files(table):
            with contextlib.suppress(FileNotFoundError):
                stale = path.name.endswith(".tmp") or rolled_from(path.name) not in listed
                if stale and path.stat().st_mtime < cutoff:
                    path.unlink()

    def _drop_rollups_of(self, table: str, names: set[str]) -> None:
        """Delete the roll-ups of these segment files at once (set aside, or cleared)."""
        for path in self._rollup_files(table):
            if rolled_from(path.name) in names:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _rollup_files(self, table: str) -> list[Path]:
        try:
            return list(self.rollup_dir(table).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def clear(self) -> None:
        """Remove every segment of every table (used before re-seeding).

        The files go at once, not after a grace period: a reader that misses one lists the
        segments again, and no cleared file is left for a manifest rebuild to bring back.
        """
        for table in TABLES:
            with self._locked(table):
                manifest = self._manifest_locked(table)
                doomed = [s["file"] for s in manifest["segments"]] + [r["file"] for r in manifest["retired"]]
                manifest.update(segments=[], retired=[], version=manifest["version"] + 1)
                self._write_manifest(table, manifest)
                for name in doomed:
                    with contextlib.suppress(FileNotFoundError):
                        (self.table_dir(table) / name).unlink()
                self._drop_rollups_of(table, set(doomed))

    # --- segments that cannot be used: quarantine/ ----------------------------------------

    def quarantine(self, table: str, file: str, why: str) -> SetAside | None:
        """Move a live segment that cannot be read to ``quarantine/``; None if it is not live."""
        with self._locked(table):
            manifest = self._manifest_locked(table)
            entry = next((s for s in manifest["segments"] if s["file"] == file), None)
            if entry is None:
                return None
            aside = self._set_aside_live_locked(table, manifest, entry, why)
            self._write_manifest(table, manifest)
            return aside

    def _set_aside_live_locked(self, table: str, manifest: Manifest, entry: Entry, why: str) -> SetAside:
        """Take a live segment out of ``manifest`` (the caller writes it) and set its file aside."""
        aside = self._set_aside(table, entry["file"], entry["rows"], "unreadable", why)
        manifest["segments"].remove(entry)
        manifest["version"] += 1
        return aside

    def _set_aside(self, table: str, name: str, rows: int | None, kind: str, why: str) -> SetAside:
        """Note first, then move: a writer killed in between leaves a note that explains itself."""
        folder = self.table_dir(table) / QUARANTINE
        folder.mkdir(exist_ok=True)
        source = self.table_dir(table) / name
        self._drop_rollups_of(table, {name})  # put back, it gets roll-ups from what it then holds
        if not source.exists():
            kind, why = "missing", "the file is gone"
        note = {"file": name, "rows": rows, "kind": kind, "why": why, "at": _now_iso()}
        _atomic_write_bytes(folder / f"{name}.json", json.dumps(note, indent=1).encode())
        if kind == "missing":
            aside = SetAside(self.table_dir(table) / name, rows, kind, why)
        else:
            os.replace(source, folder / name)
            aside = SetAside(folder / name, rows, kind, why)
        log.warning("Set aside %s (%s, %s): queries run on the rest", aside.path, why, aside.held)
        return aside

    def set_aside(self) -> list[SetAside]:
        """Every segment taken out of the store that still awaits a person, all tables."""
        found = []
        for table in TABLES:
            folder = self.table_dir(table) / QUARANTINE
            if not folder.is_dir():
                continue
            for note_path in sorted(folder.glob("seg-*.json")):
                note = _read_note(note_path)
                name = note_path.name.removesuffix(".json")
                kind = note.get("kind", "unreadable")
                if kind == "missing":
                    found.append(
                        SetAside(self.table_dir(table) / name, note.get("rows"), kind, note.get("why", ""))
                    )
                elif (folder / name).exists():
                    found.append(SetAside(folder / name, note.get("rows"), kind, note.get("why", "")))
        return found

    def notices(self) -> list[str]:
        """What a person should know about this store: one line per segment set aside."""
        return [aside.notice() for aside in self.set_aside()]

    # --- recovery on open -----------------------------------------------------------------

    def _segment_names(self, table: str) -> list[str]:
        directory = self.table_dir(table)
        try:
            return sorted(n for n in os.listdir(directory) if SEGMENT_NAME.fullmatch(n))
        except FileNotFoundError:
            return []

    def _recover_locked(self, table: str) -> None:
        """Tidy what stopped writers left: temp files, segments no manifest names, lost files."""
        directory = self.table_dir(table)
        leftovers = self._leftover_temps(table)
        manifest = self._load_manifest(table)
        if manifest is None:
            if self._segment_names(table):
                self._rebuild_locked(table)
            return
        known = {s["file"] for s in manifest["segments"]} | {r["file"] for r in manifest["retired"]}
        known |= {f.name for f in leftovers}  # whole temp segments, already renamed into place
        leftovers += [
            recovery.inspect(directory / n, SCHEMAS[table])
            for n in self._segment_names(table)
            if n not in known
        ]
        notes = self._notes(table)
        quarantine = directory / QUARANTINE
        restored = {n for n in notes if not (quarantine / n).exists() and notes[n].get("kind") != "missing"}
        changed = self._drop_missing(table, manifest, notes)
        decisions = recovery.plan(manifest, leftovers, restored, set(notes))
        for leftover in decisions.adopt:
            self._adopt(table, manifest, leftover)
            changed = True
        for leftover, why in decisions.discard:
            (directory / leftover.name).unlink()
            log.info("Removed %s: %s", directory / leftover.name, why)
        for leftover, why in decisions.set_aside:
            kind = "unreadable" if leftover.error else "unplaced"
            self._set_aside(table, leftover.name, leftover.rows, kind, why)
        for name in restored - {f.name for f in decisions.adopt}:  # deleted from quarantine/ by a person
            (quarantine / f"{name}.json").unlink()
        due = [r for r in manifest["retired"] if r["at"] < time.time() - RETIRED_GRACE_SECONDS]
        if due:
            self._delete_retired(table, manifest)
            changed = True
        if changed:
            manifest["version"] += 1
            self._write_manifest(table, manifest)

    def _leftover_temps(self, table: str) -> list[recovery.SegmentFile]:
        """Delete temp files; a whole temp segment is renamed into place, to be judged like any leftover."""
        directory = self.table_dir(table)
        whole = []
        for name in sorted(os.listdir(directory)):
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            final = name[1:].removesuffix(".tmp")
            if SEGMENT_NAME.fullmatch(final) and not (directory / final).exists():
                found = recovery.inspect(directory / name, SCHEMAS[table], name=final)
                if found.error is None:
                    os.replace(directory / name, directory / final)
                    whole.append(found)
                    continue
            (directory / name).unlink()
            log.info("Removed %s, left by a stopped writer", directory / name)
        return whole

    def _drop_missing(self, table: str, manifest: Manifest, notes: dict[str, Entry]) -> bool:
        """Live entries whose file is gone: set aside (noted) unless already moved to quarantine/."""
        directory = self.table_dir(table)
        missing = [s for s in manifest["segments"] if not (directory / s["file"]).exists()]
        for entry in missing:
            manifest["segments"].remove(entry)
            if entry["file"] not in notes:
                self._set_aside(table, entry["file"], entry["rows"], "missing", "")
        return bool(missing)

    def _adopt(self, table: str, manifest: Manifest, leftover: recovery.SegmentFile) -> None:
        manifest["segments"].append(leftover.entry())
        manifest["segments"].sort(key=lambda s: s["min_ts"])
        if leftover.batch:
            manifest["batches"] = [*manifest["batches"], leftover.batch][-BATCHES_KEPT:]
        with contextlib.suppress(FileNotFoundError):
            (self.table_dir(table) / QUARANTINE / f"{leftover.name}.json").unlink()
        log.warning("Adopted %s (%s rows), left by a stopped writer", self.table_dir(table) / leftover.name,
                    f"{leftover.rows:,}")  # fmt: skip

    def _notes(self, table: str) -> dict[str, Entry]:
        folder = self.table_dir(table) / QUARANTINE
        if not folder.is_dir():
            return {}
        return {p.name.removesuffix(".json"): _read_note(p) for p in folder.glob("seg-*.json")}

    def _rebuild_locked(self, table: str) -> Manifest:
        """A manifest from the segment files themselves, when it was lost."""
        directory = self.table_dir(table)
        self._leftover_temps(table)
        files = [recovery.inspect(directory / n, SCHEMAS[table]) for n in self._segment_names(table)]
        try:
            live, superseded, unreadable = recovery.rebuild(files)
        except ValueError as exc:
            raise StoreError(
                f"{self._manifest_path(table)} is missing, and segment files written by an older tokenboard "
                f"({exc}) do not say whether their rows were merged into others: restore manifest.json "
                "from a backup"
            ) from None
        for bad in unreadable:
            self._set_aside(table, bad.name, bad.rows, "unreadable", bad.error or "")
        now = time.time()
        manifest = {
            "version": int(now),  # unlike any version a reader may still hold
            "segments": sorted((f.entry() for f in live), key=lambda s: s["min_ts"]),
            "retired": [{"file": f.name, "at": now} for f in superseded],
            "batches": [f.batch for f in live if f.batch][-BATCHES_KEPT:],
        }
        self._write_manifest(table, manifest)
        log.warning(
            "Rebuilt the missing %s from %d segment files (%s rows)",
            self._manifest_path(table), len(live), f"{sum(f.rows or 0 for f in live):,}",
        )  # fmt: skip
        return manifest


def rolled_from(name: str) -> str:
    """The segment file a roll-up file (or a reader's temp file of one) was made from."""
    return name.lstrip(".").split(ROLLUP_OF, 1)[0] + ".parquet"


def _empty_manifest() -> Manifest:
    return {"version": 0, "segments": [], "retired": [], "batches": []}


def _manifest_problem(data: object) -> str:
    """What is wrong with a manifest's shape, or "" (names are checked: they become paths)."""

    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def named(item: object) -> bool:
        return (
            isinstance(item, dict)
            and isinstance(item.get("file"), str)
            and bool(SEGMENT_NAME.fullmatch(item["file"]))
        )

    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if not whole(data.get("version")):
        return "'version' is not a whole number"
    if not isinstance(data.get("segments"), list):
        return "'segments' is not a list"
    for i, s in enumerate(data["segments"]):
        if (
            not named(s)
            or not whole(s.get("rows"))
            or not all(isinstance(s.get(k), str) for k in ("min_ts", "max_ts"))
        ):
            return f"segment {i + 1} is not a file name with rows, min_ts and max_ts"
    retired = data.get("retired", [])
    if not isinstance(retired, list) or not all(
        named(r) and isinstance(r.get("at"), (int, float)) for r in retired
    ):
        return "'retired' is not a list of files with times"
    batches = data.get("batches", [])
    if not isinstance(batches, list) or not all(isinstance(b, str) for b in batches):
        return "'batches' is not a list of names"
    return ""


def _read_note(path: Path) -> Entry:
    try:
        note = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _read_only(exc: OSError, data_dir: Path) -> OSError | StoreError:
    """A write refused by permissions or the file system, said as such; other errors as they are."""
    if exc.errno not in READ_ONLY_ERRNOS:
        return exc
    where = exc.filename or data_dir
    return ReadOnlyStoreError(
        f"{data_dir} is read-only ({exc.strerror}: {where}): tokenboard cannot write there; make it "
        "writable, or set data_dir to a writable directory"
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
