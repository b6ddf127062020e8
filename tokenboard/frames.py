"""Result frames with the same dtypes whichever backend produced them.

Both backends know each column's Kusto type (the Log Analytics answer carries it;
locally duckdb-kql maps DuckDB's), so one conversion keyed by that type makes a
local frame and an Azure frame of the same data compare equal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd


def normalize(frame: pd.DataFrame, kusto_types: Sequence[str]) -> pd.DataFrame:
    """Give every column the dtype its Kusto type maps to."""
    out = {}
    for column, ktype in zip(frame.columns, kusto_types, strict=True):
        out[column] = _convert(frame[column], ktype.lower())
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def from_rows(
    columns: Sequence[str], kusto_types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> pd.DataFrame:
    """A frame from a Log Analytics table (column names, their types, row lists)."""
    frame = pd.DataFrame([list(r) for r in rows], columns=list(columns), dtype=object)
    return normalize(frame, kusto_types)


def _convert(series: pd.Series, ktype: str) -> pd.Series:
    if ktype == "string" or ktype == "guid":
        return series.map(
            lambda v: "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
        ).astype("str")
    if ktype in ("int", "long"):
        numbers = pd.to_numeric(series, errors="coerce")
        return numbers.astype("int64") if not numbers.isna().any() else numbers.astype("Int64")
    if ktype in ("real", "decimal", "double"):
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if ktype == "bool":
        if series.isna().any():
            return series.astype("boolean")
        return series.map(lambda v: bool(v) if not isinstance(v, str) else v.lower() == "true").astype("bool")
    if ktype == "datetime":
        return pd.to_datetime(series, utc=True, format="mixed").astype("datetime64[ns, UTC]")
    if ktype == "timespan":
        return pd.to_timedelta(series.map(_timedelta_value)).astype("timedelta64[ns]")
    if ktype == "dynamic":
        return series.map(_json_value).astype(object)
    return series


def _timedelta_value(value: Any) -> Any:
    """DuckDB hands INTERVALs to pandas as DateOffset; Kusto timespans have no months."""
    if isinstance(value, pd.DateOffset):
        kwds = value.kwds
        days = kwds.get("days", 0) + 30 * kwds.get("months", 0)
        return pd.Timedelta(days=days) + pd.Timedelta(kwds.get("nanoseconds", 0), unit="ns")
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
