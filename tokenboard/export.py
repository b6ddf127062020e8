"""The one writer: CSV, JSON and the text of times and timespans, as other tools expect them.

Every file, download and command-line answer goes through here, so they all agree:

- times: ISO 8601 in UTC with a ``Z``; milliseconds only when some value of the column has a
  fraction of a second;
- numbers: whole numbers without ``.0`` (token sums), fractions in full precision (rates, shares);
- booleans: ``true`` / ``false``; lists and objects: compact JSON text (in CSV cells);
- timespans: as Kusto and .NET write them, ``[-][d.]hh:mm:ss[.fffffff]``;
- nothing: an empty CSV cell, ``null`` in JSON.

Frames come from query results and probe runs only, never from settings, so nothing secret can
end up in a file; the columns are written in the frame's (documented) order.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd


def to_csv(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV bytes (header row first, ``\\n`` line ends, no index)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        out[str(column)] = pd.Series(_values(frame[column]), index=frame.index, dtype=object).map(_csv_cell)
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def to_json(frame: pd.DataFrame) -> bytes:
    """A JSON array of records, one per line; missing values are null."""
    columns = [(str(c), _values(frame[c])) for c in frame.columns]
    records = [
        json.dumps({name: values[i] for name, values in columns}, ensure_ascii=False)
        for i in range(len(frame))
    ]
    return ("[\n" + ",\n".join(records) + ("\n" if records else "") + "]\n").encode("utf-8")


def json_text(value: Any) -> str:
    """Compact JSON text that keeps unicode as it is (dimension values, list cells)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def time_text(value: datetime) -> str:
    """One instant as ISO 8601 UTC with a ``Z`` (naive means UTC); milliseconds when it has any."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def timespan_text(value: timedelta) -> str:
    """A timespan as Kusto and .NET write it: ``[-][d.]hh:mm:ss[.fffffff]``."""
    sign = "-" if value < timedelta(0) else ""
    micros = abs(value) // timedelta(microseconds=1)
    seconds, micros = divmod(micros, 1_000_000)
    days, seconds = divmod(seconds, 86_400)
    text = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if days:
        text = f"{days}.{text}"
    if micros:
        text += f".{micros * 10:07d}"
    return sign + text


# --- cells ------------------------------------------------------------------------------------


def _values(series: pd.Series) -> list[Any]:
    """A column as plain Python values: text for times and timespans, None for missing."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        return _times(series)
    convert: Callable[[Any], Any]
    if pd.api.types.is_timedelta64_dtype(series):
        convert = lambda v: timespan_text(pd.Timedelta(v).to_pytimedelta())  # noqa: E731
    elif pd.api.types.is_float_dtype(series):
        convert = _number
    else:
        convert = _plain
    return [None if _missing(v) else convert(v) for v in series.tolist()]


def _times(series: pd.Series) -> list[str | None]:
    values = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    present = values.dropna()
    has_fraction = bool(((present.dt.microsecond != 0) | (present.dt.nanosecond != 0)).any())
    text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f" if has_fraction else "%Y-%m-%dT%H:%M:%S")
    if has_fraction:
        text = text.str[:-3]
    return [
        None if missing else f"{t}Z" for t, missing in zip(text.tolist(), values.isna().tolist(), strict=True)
    ]


def _number(value: float) -> int | float | None:
    """Whole numbers (token sums) as integers; fractions (rates, shares) as they are."""
    value = float(value)
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, (str, bool, int, list, dict)) or value is None:
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, timedelta):
        return timespan_text(value)
    return str(value)


def _missing(value: Any) -> bool:
    if value is None or isinstance(value, (list, dict, tuple, str)):
        return value is None
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json_text(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)
