"""Datetime bin() in integer arithmetic gives the timestamps duckdb-kql's own SQL gives."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import duckdb_kql
import pytest
from duckdb_kql.engine import schema as read_schema

from tokenboard.backends import bins

SIZES = ["1s", "90s", "1m", "5m", "15m", "1h", "6h", "1d", "7d"]
US = timedelta(microseconds=1)
# The epoch and dates before it, leap days, a year boundary, 2038 and beyond; each also
# one microsecond either side.
INSTANTS = [
    datetime(1970, 1, 1),
    datetime(1969, 12, 31, 23, 59, 59),
    datetime(1900, 3, 1, 0, 0),
    datetime(1955, 7, 4, 12, 34, 56, 789012),
    datetime(2024, 2, 29, 23, 59),
    datetime(2025, 12, 31, 23, 0),
    datetime(2026, 3, 1, 0, 0),
    datetime(2026, 11, 24, 12, 7, 30, 500000),
    datetime(2038, 1, 19, 3, 14, 8),
    datetime(2199, 12, 31, 18, 0),
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb_kql.connect()
    con.execute("SET TimeZone='UTC'")
    values = [t + d for t in INSTANTS for d in (-US, timedelta(0), US)]
    con.execute("CREATE TABLE t (ts TIMESTAMP)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values] + [[None]])
    return con


def _translated(con, size: str) -> str:
    kql = f"t | extend b = bin(ts, {size}) | project ts, b | order by ts asc"
    return str(duckdb_kql.to_sql(kql, schema=read_schema(con)))


@pytest.mark.parametrize("size", SIZES)
def test_rewritten_bins_equal_translated_bins(con, size: str) -> None:
    sql = _translated(con, size)
    fast = bins.rewrite(sql)
    assert fast != sql and "AT TIME ZONE" not in fast  # the translator's form is still recognised
    assert con.execute(fast).fetchall() == con.execute(sql).fetchall()
    assert con.sql(fast).columns == con.sql(sql).columns and con.sql(fast).types == con.sql(sql).types


@pytest.mark.parametrize("size", ["15m", "1h", "6h", "1d", "7d"])
@pytest.mark.parametrize("phase", ["0s", "30m", "5h", "1110m", "71100s", "4d"])  # 18:30, 19:45
def test_bins_on_a_local_grid_equal_translated_bins(con, size: str, phase: str) -> None:
    kql = f"t | extend b = bin(ts - {phase}, {size}) + {phase} | project ts, b | order by ts asc"
    sql = str(duckdb_kql.to_sql(kql, schema=read_schema(con)))
    fast = bins.rewrite(sql)
    assert fast != sql and "AT TIME ZONE" not in fast
    assert con.execute(fast).fetchall() == con.execute(sql).fetchall()
    assert con.sql(fast).types == con.sql(sql).types


def test_bins_floor_before_the_epoch(con) -> None:
    (value,) = con.execute(f"SELECT {bins.floor_sql('ts', 3_600_000_000)} FROM t WHERE ts = ?",
                           [datetime(1955, 7, 4, 12, 34, 56, 789012)]).fetchone()  # fmt: skip
    assert value == datetime(1955, 7, 4, 12, 0)


def test_a_null_timestamp_has_a_null_bin(con) -> None:
    sql = bins.rewrite(_translated(con, "1h"))
    assert con.execute(f"SELECT b FROM ({sql}) WHERE ts IS NULL").fetchall() == [(None,)]


@pytest.mark.parametrize(
    "kql",
    [
        "t | extend b = bin(ts + 1s, 1m)",  # an expression, not a column
        "t | extend b = bin(ts, 100ms)",  # below a second
        "t | extend b = bin(ts, 1.5s)",
        "t | extend b = bin(tolong(1), 5)",  # a numeric bin
    ],
)
def test_other_bins_are_left_as_translated(con, kql: str) -> None:
    sql = str(duckdb_kql.to_sql(kql, schema=read_schema(con)))
    assert bins.rewrite(sql) == sql


def test_a_bin_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        bins.floor_sql('"ts"', 0)
