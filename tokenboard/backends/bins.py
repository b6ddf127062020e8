"""Datetime bins in integer arithmetic: duckdb-kql's ``bin(timestamp, 1m)``, made cheap.

duckdb-kql renders ``bin(t, 1m)`` on a datetime as
``to_timestamp(floor(epoch(t) / epoch(INTERVAL '1m')) * epoch(INTERVAL '1m')) AT TIME ZONE 'UTC'``:
right, but the time-zone conversion costs about 40 ns a row, most of a per-minute query
over a month of metrics (bench/README.md). :func:`rewrite` replaces each such expression
over a plain column, or a column less a constant interval (the local grid of a time zone:
``bin(timestamp - bin_phase, bin_size) + bin_phase``), with :func:`floor_sql`, the same
floor to a multiple of the bin from
the Unix epoch, done on whole microseconds: the answer is the same timestamp for every
value (tests/test_bins.py checks the range edges, the epoch and dates before it), and
exact where the double-based original could round (dates centuries away).

Anything else (an expression inside ``bin``, a bin of milliseconds, an output the
translator did not produce before) is left as duckdb-kql wrote it.
"""

from __future__ import annotations

import re

# The translator's datetime bin of a column (or of a column less an interval literal), with
# the bin size a whole number of s / m / h / d.
_COLUMN = r"\"(?:[^\"]|\"\")+\""
_BIN = re.compile(
    rf"to_timestamp\(floor\(epoch\((?P<column>{_COLUMN}|\({_COLUMN} - INTERVAL '[^']*'\))\) / "
    r"epoch\(INTERVAL '(?P<size>\d+)(?P<unit>[smhd])'\)\) \* "
    r"epoch\(INTERVAL '(?P=size)(?P=unit)'\)\) AT TIME ZONE 'UTC'"
)
_MICROS = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def floor_sql(column: str, micros: int) -> str:
    """SQL for ``column`` (a TIMESTAMP) floored to a multiple of ``micros`` from the epoch."""
    if micros <= 0:
        raise ValueError(f"a bin must be positive, not {micros} µs")
    e = f"epoch_us({column})"
    # DuckDB's % keeps the dividend's sign: (e % n + n) % n is the floor remainder.
    return f"make_timestamp({e} - (({e} % {micros}) + {micros}) % {micros})"


def rewrite(sql: str) -> str:
    """``sql`` with each datetime bin over a column in integer arithmetic."""
    return _BIN.sub(lambda m: floor_sql(m["column"], int(m["size"]) * _MICROS[m["unit"]]), sql)
