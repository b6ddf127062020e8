"""The embedded default: the same KQL files, run by duckdb-kql over the local store.

Where the time went (bench/README.md): the shared prelude (``_tables.kql``) turns the
configured dimensions into columns with ``tostring(customDimensions[...])``, which
DuckDB pays for as one JSON parse per row per dimension, plus one to type the column
as JSON: about 90% of a query over a month of metrics. customDimensions has few
distinct values (Azure caps a metric at 50,000 time series), so this backend runs
``_tables.kql`` once per *distinct* value, keeps the answers in a small table, and
serves ``TokenMetrics`` / ``GatewayRequests`` as views that join it. A bound query whose
prelude is the rendered ``_tables.kql`` runs with ``_tables_local.kql`` in its place; the
text the user sees, and what Azure runs, stay the same.

Two more savings keep a month of metrics quick: datetime ``bin()`` in integer
arithmetic (bins.py), and roll-ups of customMetrics read in place of raw rows when
a query allows (rollups.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb_kql.engine import schema as read_schema
from duckdb_kql.types import kusto_type

from tokenboard import kql, recovery
from tokenboard.appinsights import SCHEMAS, TABLES
from tokenboard.backends import bins, hitcalls, rollups
from tokenboard.backends.base import (
    Backend,
    BackendError,
    BadQueryError,
    QueryResult,
    QueryTimeoutError,
    StoreManifestError,
    StoreReadError,
)
from tokenboard.config import Settings
from tokenboard.frames import normalize
from tokenboard.safe import md
from tokenboard.store import ManifestError, ReadOnlyStoreError, Segment, Store, StoreError, rolled_from

log = logging.getLogger(__name__)

# What runs in place of the shared prelude: the same columns, from the side tables below.
LOCAL_PRELUDE = "_tables_local.kql"
# Store table -> the prelude's name for it with the dimension columns added.
PRELUDE_TABLES = {"customMetrics": "TokenMetrics", "requests": "GatewayRequests"}
# Past this many distinct customDimensions a table goes back to per-row extraction
# (a dimension holding request ids, say), which keeps the side table small.
DISTINCT_LIMIT = 100_000
TRANSLATION_CACHE_SIZE = 256
MAX_SET_ASIDE = 16  # damaged segments set aside within one query before it gives up
RESTORE_HINT = (
    "Restore the file from a backup, or make the directory writable so tokenboard can set it aside."
)


@dataclass
class _Dimensions:
    """What is known of one table's distinct customDimensions (segment files are immutable)."""

    files: set[str] = field(default_factory=set)
    texts: set[str | None] = field(default_factory=set)
    columns: tuple[str, ...] = ()  # the prelude's added columns, in its order
    created: bool = False  # the side table exists
    has_null: bool = False  # some row has no customDimensions at all
    usable: bool = True  # False: too many values or the prelude cannot read them


class LocalBackend(Backend):
    reads_local_store = True
    store: Store

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        super().__init__(settings)
        self.store = store or Store(settings.store.data_dir)
        self._con = duckdb_kql.connect()
        self._con.execute("SET TimeZone='UTC'")
        self._database: str = self._con.sql("SELECT current_database()").fetchall()[0][0]
        self._lock = threading.Lock()
        self._set_aside_lock = threading.Lock()
        self._versions: dict[str, int] = {}
        names = settings.telemetry.names()
        self._shared_prelude = kql.render_prelude(names, self.prelude)
        self._local_prelude = kql.render_prelude(names, LOCAL_PRELUDE)
        self._dimensions = {table: _Dimensions() for table in PRELUDE_TABLES}
        self._schema: dict[str, list[str]] = {}
        self._translations: dict[tuple[bool, str], str] = {}
        self._segments: dict[str, list[Segment]] = {table: [] for table in TABLES}
        self._rollups_built: set[str] = set()  # names of roll-up files known to exist
        # Why roll-ups are not used (switched off, or say a read-only data directory).
        self._rollups_off = "" if settings.store.rollups else "store.rollups is false"

    @property
    def description(self) -> str:
        return f"local demo store in {self.store.data_dir}"

    def describe(self) -> str:
        return f":material/database: {md(self.description)} (embedded demo)"

    def seed_if_empty(self) -> bool:
        from tokenboard.demo import seed_if_empty

        if seed_if_empty(self.store, self.settings) is None:
            return False
        self.write_rollups()  # while seeding anyway, rather than at the first long range
        return True

    def write_rollups(self) -> int:
        """Write the roll-ups every segment lacks (a long range would, the first time); how many."""
        self.refresh()
        if self._rollups_off or not self._dimensions["customMetrics"].usable:
            return 0
        written = 0
        with self._lock:
            for rollup in rollups.AHEAD:
                for segment in self._segments["customMetrics"]:
                    there = self._rollup_path(rollup, segment).exists()
                    if self._rollup_file(rollup, segment) is None:
                        return written
                    written += not there
        return written

    def refresh(self, force: bool = False) -> None:
        """Point the DuckDB views at the store's current segments (cheap when unchanged)."""
        with self._lock:
            changed = False
            for table in TABLES:
                version = self.store.version(table)
                if force or self._versions.get(table) != version:
                    self._segments[table] = self.store.segments(table)
                    if table == "customMetrics":  # forget roll-ups of segments gone
                        live = {s.file for s in self._segments[table]}
                        self._rollups_built = {f for f in self._rollups_built if rolled_from(f) in live}
                    files = [str(self.store.table_dir(table) / s.file) for s in self._segments[table]]
                    self._con.execute(_view_sql(table, files))
                    if table in PRELUDE_TABLES:
                        self._con.execute(self._prelude_view_sql(table, files))
                    self._versions[table] = version
                    changed = True
            if changed:
                fresh = read_schema(self._con)
                if fresh != self._schema:
                    self._schema = fresh
                    self._translations = {}

    def run_query(self, bound: kql.BoundQuery) -> QueryResult:
        """Run a bound query; every failure is a ``BackendError`` (the engine's never escape).

        A segment the engine cannot read is set aside (``Store.quarantine``) and the query runs
        again on the rest; ``notices()`` then says what was set aside.
        """
        text = self._local_text(bound)
        try:
            return self._run_on_readable_segments(bound, text)
        except BackendError:
            raise
        except ManifestError as exc:
            raise StoreManifestError(str(exc)) from None
        except StoreError as exc:
            raise StoreReadError(str(exc)) from None
        except (duckdb.Error, OSError) as exc:  # a full disk, ...
            raise StoreReadError(f"Reading the local store failed: {recovery.reason(exc)}") from None

    def _run_on_readable_segments(self, bound: kql.BoundQuery, text: str) -> QueryResult:
        listed_again = False
        for _ in range(MAX_SET_ASIDE + 2):
            listed = self._listing()
            try:
                self.refresh(force=listed_again)
                return QueryResult(frame=self._run(text, bound), query=bound)
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                # A page's sections query at once: one sets a damaged segment aside, and the
                # others, failing on the same file, wait for it and then run on the new listing.
                with self._set_aside_lock:
                    if self._listing() != listed:
                        listed_again = True  # set aside or retired by compaction meanwhile
                        continue
                    if not listed_again and _retired(exc):
                        listed_again = True  # a segment retired between listing and reading
                        continue
                    if not self._set_aside_damaged(exc):
                        raise StoreReadError(
                            f"Reading the local store failed: {recovery.reason(exc)}.",
                            hint=f"Check the files under {self.store.data_dir}, "
                            "or restore them from a backup.",
                        ) from None
                listed_again = True  # queries run on the rest
        raise StoreReadError(
            f"Too many damaged segment files in {self.store.data_dir}.",
            hint="Restore the store from a backup (each table's quarantine/ lists what was set aside).",
        )

    def notices(self) -> list[str]:
        return self.store.notices()

    def _listing(self) -> dict[str, int]:
        """Each table's store version: it changes whenever a segment comes or goes."""
        return {table: self.store.version(table) for table in TABLES}

    def _set_aside_damaged(self, exc: duckdb.Error) -> bool:
        """Move the segment the engine could not read to quarantine/; False if none is to blame."""
        message = str(exc)
        suspects = [(t, p) for t in TABLES for p in self.store.segment_paths(t) if str(p) in message]
        if not suspects:  # the message names no file: look for a footer that does not read
            suspects = [(t, p) for t in TABLES for p in self.store.segment_paths(t) if not _footer_reads(p)]
        for table, path in suspects:
            try:
                self.store.quarantine(table, path.name, recovery.reason(exc, path))
            except ReadOnlyStoreError:
                raise StoreReadError(
                    f"Segment {path} cannot be read ({recovery.reason(exc)}), and {self.store.data_dir} is "
                    "read-only, so it cannot be set aside.",
                    hint=RESTORE_HINT,
                ) from None
        return bool(suspects)

    def _run(self, text: str, bound: kql.BoundQuery) -> pd.DataFrame:
        """On a roll-up when the query allows one, else (or should that fail) on raw rows.

        A roll-up file the engine cannot read (damaged, deleted by hand) is deleted and
        forgotten: the next query that needs it writes it again from its segment.
        """
        # The store's own tables, as a query's temporary views may shadow them.
        calls = hitcalls.view_sql(
            bound.name, bound.values, self._main("dependencies"), self._main("requests")
        )
        chosen = self._rollup_view(bound)
        if chosen is not None:
            plan, view = chosen
            try:
                return self._execute(text, view, one_per_minute=plan.one_per_minute, calls=calls)
            except QueryTimeoutError:
                raise
            except (BackendError, duckdb.Error) as exc:
                named = self._forget_rollups_named(str(exc))
                if not named and isinstance(exc, duckdb.IOException) and _retired(exc):
                    raise  # a segment retired by compaction: list them again
                log.warning("%s: the roll-up failed (%s); reading raw rows", bound.name, recovery.reason(exc))
        return self._execute(text, calls=calls)

    def _main(self, table: str) -> str:
        return f"{_ident(self._database)}.main.{_ident(table)}"

    def _forget_rollups_named(self, message: str) -> list[Path]:
        directory = self.store.rollup_dir("customMetrics")
        with self._lock:
            named = [directory / f for f in self._rollups_built if str(directory / f) in message]
            for path in named:
                self._rollups_built.discard(path.name)
                with contextlib.suppress(OSError):
                    path.unlink()
        return named

    def _local_text(self, bound: kql.BoundQuery) -> str:
        """The text to run: the local prelude in place of the shared one, when it has it."""
        if bound.prelude == self._shared_prelude:
            return self._local_prelude + bound.lets + bound.body
        return bound.text

    def _translate(self, text: str, rolled: bool = False) -> tuple[str, dict[str, Any]]:
        """DuckDB SQL for KQL text, cached by text (translating costs 40-100 ms).

        ``rolled``: for TokenMetrics over a roll-up, whose only columns are the sums and
        the dimensions, so a query reading any other column fails rather than read NULLs.
        """
        cached = self._translations.get((rolled, text))
        if cached is not None:
            return cached, {}
        schema = self._schema
        if rolled:
            view = PRELUDE_TABLES["customMetrics"]
            columns = [*rollups.MEASURES, *self._dimensions["customMetrics"].columns]
            schema = {k: columns if k.rsplit(".", 1)[-1] == view else v for k, v in schema.items()}
        result = duckdb_kql.to_sql(text, schema=schema)
        if result.unbound:
            raise duckdb_kql.KqlSchemaError(", ".join(result.unbound), hint="parameter without a value")
        sql = bins.rewrite(str(result))
        if result.parameters:  # a clock (now()) or declared values: bound per run, not cached
            return sql, dict(result.parameters)
        if len(self._translations) >= TRANSLATION_CACHE_SIZE:
            self._translations.pop(next(iter(self._translations)))
        self._translations[rolled, text] = sql
        return sql, {}

    def _execute(
        self, text: str, view: str | None = None, one_per_minute: bool = False, calls: str | None = None
    ) -> pd.DataFrame:
        """Run KQL text; with ``view``, TokenMetrics is that SQL for this query alone
        (``one_per_minute``: a view with one row per minute, see rollups.per_minute_sql), and
        with ``calls`` dependencies is (hitcalls.py)."""
        cursor = self._con.cursor()
        timeout = self.settings.query.timeout_seconds
        timer = threading.Timer(timeout, cursor.interrupt)
        timer.start()
        try:
            sql, params = self._translate(text, rolled=view is not None)
            if one_per_minute:
                sql = rollups.per_minute_sql(sql)
            cursor.execute("SET TimeZone='UTC'")
            if view is not None:  # a temporary view is the cursor's own, and shadows the shared one
                cursor.execute(f"CREATE TEMP VIEW {_ident(PRELUDE_TABLES['customMetrics'])} AS {view}")
            if calls is not None:
                cursor.execute(f'CREATE TEMP VIEW "dependencies" AS {calls}')
            relation = cursor.sql(sql, params=params) if params else cursor.sql(sql)
            types = [kusto_type(t) for t in relation.types]
            table: pa.Table = relation.arrow() if hasattr(relation, "arrow") else relation.fetch_arrow_table()
            if isinstance(table, pa.RecordBatchReader):
                table = table.read_all()
            frame = table.to_pandas()
            return normalize(frame, types)
        except duckdb_kql.KqlError as exc:
            raise BadQueryError(f"The query could not be translated: {exc}") from None
        except duckdb.InterruptException:
            raise QueryTimeoutError(
                f"The query took longer than {timeout} s and was stopped.",
                hint="Narrow the time range or raise query_timeout_seconds.",
            ) from None
        except (duckdb.BinderException, duckdb.ParserException, duckdb.ConversionException) as exc:
            raise BadQueryError(f"The query failed in the local engine: {exc}") from None
        finally:
            timer.cancel()
            cursor.close()

    # --- roll-ups (rollups.py) ----------------------------------------------------------

    def reads(self, bound: kql.BoundQuery) -> str:
        """What the query reads here: "<name> roll-up" or "raw rows" (bench/queries.py says it)."""
        self.refresh()
        chosen = self._choose_rollup(bound)
        return f"{chosen[0].rollup.name} roll-up" if chosen else "raw rows"

    def _rollup_view(self, bound: kql.BoundQuery) -> tuple[rollups.Plan, str] | None:
        """The plan and SQL for TokenMetrics over a roll-up, if the query may read one (else None)."""
        chosen = self._choose_rollup(bound)
        if chosen is None:
            return None
        plan, files, segments = chosen
        columns = self._dimensions["customMetrics"].columns
        rolled = _source_sql("customMetrics", files, [*rollups.MEASURES, *plan.rollup.kept(columns)])
        raw = self._dimension_rows([str(self.store.table_dir("customMetrics") / s.file) for s in segments])
        return plan, rollups.view_sql(plan, rolled, raw, columns, _ident(PRELUDE_TABLES["requests"]))

    def _choose_rollup(self, bound: kql.BoundQuery) -> tuple[rollups.Plan, list[str], list[Segment]] | None:
        """The first roll-up the query may read, its files (written if need be), and the
        segments they come from (one list, for the roll-ups and the raw rows at the edges)."""
        dims = self._dimensions["customMetrics"]
        if self._rollups_off or not dims.usable:
            return None
        for plan in rollups.plans(bound.name, bound.values):
            if not set(plan.rollup.keys or ()) <= set(dims.columns):  # a prelude without them
                continue
            with self._lock:
                segments = self._segments["customMetrics"]
                rolled_up = rollups.segments_for(plan, segments)
                if rolled_up is None:
                    continue
                files = []
                for segment in rolled_up:
                    file = self._rollup_file(plan.rollup, segment)
                    if file is None:  # cannot write roll-ups (said once): raw rows
                        return None
                    files.append(file)
            return rollups.settled(plan, rolled_up), files, segments
        return None

    def _rollup_path(self, rollup: rollups.Rollup, segment: Segment) -> Path:
        tag = rollups.tag(rollup, self._shared_prelude)
        return self.store.rollup_dir("customMetrics") / rollups.file_name(segment, rollup, tag)

    def _rollup_file(self, rollup: rollups.Rollup, segment: Segment) -> str | None:
        """The segment's roll-up file, written now if it is not there yet (None: cannot)."""
        path = self._rollup_path(rollup, segment)
        directory = path.parent
        if path.name in self._rollups_built or path.exists():
            self._rollups_built.add(path.name)
            return str(path)
        segment_path = str(self.store.table_dir("customMetrics") / segment.file)
        columns = self._dimensions["customMetrics"].columns
        try:
            rollups.write(
                self._con,
                rollup,
                self._dimension_rows([segment_path]),
                columns,
                path,
                self.settings.telemetry.total_metric,
            )
        except (OSError, duckdb.Error) as exc:
            if isinstance(exc, duckdb.IOException) and not os.path.exists(segment_path):
                raise  # retired since the segments were listed: run_query lists them again
            # Raw rows always give the answer: say why once, and stop trying.
            self._rollups_off = f"cannot write roll-ups in {directory}: {exc}"
            log.warning("%s; queries read raw rows", self._rollups_off)
            return None
        self._rollups_built.add(path.name)
        return str(path)

    def _dimension_rows(self, files: list[str]) -> str:
        """customMetrics rows of these segment files with the prelude's columns, as a relation."""
        names = [f.name for f in SCHEMAS["customMetrics"]]
        return f"({self._joined_sql('customMetrics', _source_sql('customMetrics', files), names)})"

    # --- the prelude's tables, one JSON parse per distinct customDimensions --------------

    def _prelude_view_sql(self, table: str, files: list[str]) -> str:
        """``TokenMetrics`` / ``GatewayRequests``: a join on the side table, or the prelude itself."""
        dims = self._dimensions[table]
        new = [f for f in files if f not in dims.files]
        if dims.usable and (new or not dims.created):
            self._learn(table, dims, new)
        view = PRELUDE_TABLES[table]
        if not dims.usable:  # per-row extraction: the shared prelude's own SQL
            per_row = duckdb_kql.to_sql(self._prelude_only(view), schema=read_schema(self._con))
            return f"CREATE OR REPLACE VIEW {_ident(view)} AS {per_row}"
        sql = self._joined_sql(table, _source_sql(table, files), [f.name for f in SCHEMAS[table]])
        return f"CREATE OR REPLACE VIEW {_ident(view)} AS {sql}"

    def _joined_sql(self, table: str, source: str, names: list[str]) -> str:
        """``source`` (columns ``names``, customDimensions as text) with the prelude's columns."""
        dims = self._dimensions[table]
        side = _ident(_dims_table(table))
        base = [_column_sql(name, "m") for name in names]
        if not dims.has_null:
            # Every text is in the side table, so an inner join keeps every row, and lets
            # DuckDB aggregate by the text before joining (partial aggregate pushdown).
            columns = base + [f"d.{_ident(c)}" for c in dims.columns]
            join = f'{source} AS m JOIN {side} AS d ON m."customDimensions" = d."key"'
        else:
            # Rows without customDimensions take the side table's NULL row (n); an
            # equi-join, as IS NOT DISTINCT FROM is several times slower.
            columns = base + [
                f'CASE WHEN m."customDimensions" IS NULL THEN n.{q} ELSE d.{q} END AS {q}'
                for q in map(_ident, dims.columns)
            ]
            join = (
                f'{source} AS m LEFT JOIN {side} AS d ON m."customDimensions" = d."key" '
                f'CROSS JOIN (SELECT * FROM {side} WHERE "key" IS NULL) AS n'
            )
        return f"SELECT {', '.join(columns)} FROM {join}"

    def _learn(self, table: str, dims: _Dimensions, files: list[str]) -> None:
        """Add the distinct customDimensions of new segment files to the side table."""
        rows = self._con.execute(
            f'SELECT DISTINCT "customDimensions" FROM {_source_sql(table, files)}'
        ).fetchall()
        texts = [r[0] for r in rows if r[0] not in dims.texts]
        dims.has_null = dims.has_null or any(r[0] is None for r in rows)
        if not dims.created and None not in texts:
            texts.append(None)  # the NULL row always exists: the view reads it for rows without any
        if len(dims.texts) + len(texts) > DISTINCT_LIMIT:
            dims.usable = False
            return
        if texts or not dims.created:
            try:
                extracted, columns = self._extract(table, texts)
            except (duckdb.Error, duckdb_kql.KqlError):
                dims.usable = False  # e.g. text that is not JSON: the query itself will say so
                return
            if dims.created and columns != dims.columns:
                dims.usable = False
                return
            self._con.register("_tokenboard_new_dims", extracted)
            try:
                target = _ident(_dims_table(table))
                if dims.created:
                    self._con.execute(f"INSERT INTO {target} SELECT * FROM _tokenboard_new_dims")
                else:
                    self._con.execute(
                        f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _tokenboard_new_dims"
                    )
            finally:
                self._con.unregister("_tokenboard_new_dims")
            dims.created, dims.columns = True, columns
            dims.texts.update(texts)
        dims.files.update(files)

    def _extract(self, table: str, texts: list[str | None]) -> tuple[pa.Table, tuple[str, ...]]:
        """Run the shared prelude over the distinct texts (each carried in ``name``)."""
        con = duckdb_kql.connect()
        try:
            con.register("_texts", pa.table({"key": pa.array(texts, pa.string())}))
            for name in TABLES:
                con.execute(_text_view_sql(name, with_rows=name == table))
            relation = duckdb_kql.kql(con, self._prelude_only(PRELUDE_TABLES[table]))
            result = relation.arrow()
            if isinstance(result, pa.RecordBatchReader):
                result = result.read_all()
        finally:
            con.close()
        base = [f.name for f in SCHEMAS[table]]
        if result.column_names[: len(base)] != base:
            raise duckdb_kql.KqlSchemaError(
                PRELUDE_TABLES[table], hint="the prelude reorders the table's columns"
            )
        added = tuple(result.column_names[len(base) :])
        arrays = [result.column("name"), *(result.column(c) for c in added)]
        return pa.table(arrays, names=["key", *added]), added

    def _prelude_only(self, view: str) -> str:
        """The shared prelude followed by the bare table name (a query of its own)."""
        query = kql.parse_query_file(view, view)
        return kql.bind(query, {}, self.settings.telemetry.names(), self.prelude).text


def _footer_reads(path: Path) -> bool:
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return True


def _retired(exc: duckdb.Error) -> bool:
    """The error of a file that compaction retired (and deleted) since the views were made."""
    return "No such file" in str(exc) or "No files found" in str(exc)


def _dims_table(table: str) -> str:
    return f"_tokenboard_dims_{table}"


def _view_sql(table: str, files: list[str]) -> str:
    """A view with App Insights column names; customDimensions typed JSON (dynamic)."""
    columns = ", ".join(_column_sql(f.name) for f in SCHEMAS[table])
    return f'CREATE OR REPLACE VIEW "{table}" AS SELECT {columns} FROM {_source_sql(table, files)}'


def _column_sql(name: str, alias: str = "") -> str:
    qualified = f"{alias}.{_ident(name)}" if alias else _ident(name)
    return (
        f"{qualified}::JSON AS {_ident(name)}"
        if name == "customDimensions"
        else f"{qualified} AS {_ident(name)}"
    )


def _source_sql(table: str, files: list[str], names: list[str] | None = None) -> str:
    """Parquet files as DuckDB reads them (customDimensions still text), or no rows.

    By column name: a segment written before a column was added to the schema reads as null
    there. ``names``: the files' columns when they are not the table's (a roll-up's).
    """
    schema = SCHEMAS[table]
    if files:
        source = "read_parquet([" + ", ".join(_sql_string(f) for f in files) + "], union_by_name = true)"
        if names is not None:
            return source
        try:
            present = frozenset().union(*(_file_columns(f) for f in files))
        except (OSError, pa.ArrowException):  # retired meanwhile, or damaged: DuckDB's read says so
            return source
        missing = [f for f in schema if f.name not in present]
        if not missing:
            return source
        nulls = ", ".join(f"NULL::{_duck_type(f.type)} AS {_ident(f.name)}" for f in missing)
        return f"(SELECT *, {nulls} FROM {source})"
    types = {f.name: f.type for f in schema}
    empty = ", ".join(f"NULL::{_duck_type(types.get(n, pa.string()))} AS {_ident(n)}" for n in names or types)
    return f"(SELECT {empty} WHERE false)"


@functools.lru_cache(maxsize=16_384)
def _file_columns(path: str) -> frozenset[str]:
    """The columns a segment file holds (segments never change once written)."""
    return frozenset(pq.read_schema(path).names)


def _text_view_sql(table: str, with_rows: bool) -> str:
    """A table of the distinct texts, for running the prelude over (``name`` carries the text)."""
    columns = []
    for f in SCHEMAS[table]:
        if f.name == "customDimensions":
            columns.append('"key"::JSON AS "customDimensions"')
        elif f.name == "name":
            columns.append('"key" AS "name"')
        else:
            columns.append(f'NULL::{_duck_type(f.type)} AS "{f.name}"')
    where = "" if with_rows else " WHERE false"
    return f'CREATE OR REPLACE VIEW "{table}" AS SELECT {", ".join(columns)} FROM _texts{where}'


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duck_type(arrow_type: pa.DataType) -> str:
    return {
        pa.timestamp("us"): "TIMESTAMP",
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.int32(): "INTEGER",
        pa.bool_(): "BOOLEAN",
    }[arrow_type]
