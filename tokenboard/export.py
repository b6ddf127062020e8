"""CSV as other tools expect it: UTF-8, ISO 8601 UTC times with a Z, plain numbers.

Frames come only from query results, never from settings, so nothing secret can
end up in a file; the columns are written in the frame's (documented) order.
"""

from __future__ import annotations

import io

import pandas as pd


def to_csv(frame: pd.DataFrame) -> bytes:
    """The frame as CSV bytes (header row first, ``\\n`` line ends, no index)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        out[str(column)] = _column(frame[column])
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _column(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        return _timestamps(series)
    if pd.api.types.is_float_dtype(series):
        return series.map(_number)
    if pd.api.types.is_bool_dtype(series):
        return series.map({True: "true", False: "false"})
    return series


def _number(value: float) -> str:
    """Whole numbers (token sums) without ".0"; fractions (rates, shares) in full precision."""
    if value != value:  # NaN
        return ""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _timestamps(series: pd.Series) -> pd.Series:
    """ISO 8601 in UTC with a Z; milliseconds only when some value has them."""
    values = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    has_fraction = bool((values.dropna().dt.microsecond != 0).any())
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if has_fraction else "%Y-%m-%dT%H:%M:%S"
    text = values.dt.strftime(fmt)
    if has_fraction:
        text = text.str[:-3]
    return (text + "Z").where(values.notna(), "")
