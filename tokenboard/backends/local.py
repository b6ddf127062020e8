"""The embedded default: the same KQL files, run by duckdb-kql over the local store."""

from __future__ import annotations

import threading

import duckdb
import duckdb_kql
import pyarrow as pa
from duckdb_kql.types import kusto_type

from tokenboard import kql
from tokenboard.backends.base import Backend, BackendError, QueryResult
from tokenboard.config import Settings
from tokenboard.frames import normalize
from tokenboard.store import SCHEMAS, TABLES, Store


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        super().__init__(settings)
        self.store = store or Store(settings.data_dir)
        self._con = duckdb_kql.connect()
        self._con.execute("SET TimeZone='UTC'")
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}

    @property
    def description(self) -> str:
        return f"local demo store in {self.store.data_dir}"

    def refresh(self, force: bool = False) -> None:
        """Point the DuckDB views at the store's current segments (cheap when unchanged)."""
        with self._lock:
            for table in TABLES:
                version = self.store.version(table)
                if force or self._versions.get(table) != version:
                    self._con.execute(_view_sql(table, [str(p) for p in self.store.segment_paths(table)]))
                    self._versions[table] = version

    def run_query(self, bound: kql.BoundQuery) -> QueryResult:
        for attempt in (1, 2):
            self.refresh(force=attempt == 2)
            try:
                return QueryResult(frame=self._execute(bound.text), query=bound)
            except duckdb.IOException as exc:
                # A segment retired by compaction between listing and reading: list again.
                if attempt == 2 or "No such file" not in str(exc) and "No files found" not in str(exc):
                    raise BackendError(f"Reading the local store failed: {exc}", kind="error") from None
        raise AssertionError("unreachable")

    def _execute(self, text: str):
        cursor = self._con.cursor()
        timer = threading.Timer(self.settings.query_timeout_seconds, cursor.interrupt)
        timer.start()
        try:
            relation = duckdb_kql.kql(cursor, text)
            types = [kusto_type(t) for t in relation.types]
            table: pa.Table = relation.arrow() if hasattr(relation, "arrow") else relation.fetch_arrow_table()
            if isinstance(table, pa.RecordBatchReader):
                table = table.read_all()
            frame = table.to_pandas()
            return normalize(frame, types)
        except duckdb_kql.KqlError as exc:
            raise BackendError(f"The query could not be translated: {exc}", kind="bad_query") from None
        except duckdb.InterruptException:
            raise BackendError(
                f"The query took longer than {self.settings.query_timeout_seconds} s and was stopped.",
                hint="Narrow the time range or raise query_timeout_seconds.",
                kind="timeout",
            ) from None
        except (duckdb.BinderException, duckdb.ParserException, duckdb.ConversionException) as exc:
            raise BackendError(f"The query failed in the local engine: {exc}", kind="bad_query") from None
        finally:
            timer.cancel()
            cursor.close()


def _view_sql(table: str, files: list[str]) -> str:
    """A view with App Insights column names; customDimensions typed JSON (dynamic)."""
    schema = SCHEMAS[table]
    columns = ", ".join(
        f'"{f.name}"::JSON AS "{f.name}"' if f.name == "customDimensions" else f'"{f.name}"' for f in schema
    )
    if files:
        source = "read_parquet([" + ", ".join(_sql_string(f) for f in files) + "])"
    else:
        empty = ", ".join(f'NULL::{_duck_type(f.type)} AS "{f.name}"' for f in schema)
        source = f"(SELECT {empty} WHERE false)"
    return f'CREATE OR REPLACE VIEW "{table}" AS SELECT {columns} FROM {source}'


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
