"""Import a CSV exported from the Azure portal's Logs blade into the local store.

The portal writes headers like ``timestamp [UTC]``, timestamps like
``11/24/2026, 1:02:03.456 PM``, and dynamic columns such as ``customDimensions``
as JSON text. Workspace-based exports (``AppMetrics`` / ``AppRequests`` /
``AppDependencies``) use other column names (``TimeGenerated``, ``Sum``, ``Properties``,
``OperationId``): both are accepted, as are ISO 8601 timestamps.

Every row is checked before anything is written. Bad rows are reported with their
line number (and can be written to a rejects file); all valid rows are appended
as one segment, so an import lands whole or not at all.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from tokenboard import appinsights
from tokenboard.appinsights import SCHEMAS
from tokenboard.config import parse_bool
from tokenboard.kql import EARLIEST, LATEST
from tokenboard.store import Store

MAX_REPORTED = 20  # bad rows listed one by one; the rest are counted
MAX_DIMENSION_DEPTH = 32  # customDimensions is a flat property bag; allow some nesting, not 5,000
BATCH_ROWS = 50_000  # rows held as Python objects before they become an Arrow batch

# Workspace-based Application Insights column names -> the classic names the store uses.
ALIASES: dict[str, dict[str, str]] = {
    "customMetrics": {
        "TimeGenerated": "timestamp",
        "Name": "name",
        "Sum": "valueSum",
        "ItemCount": "valueCount",
        "Min": "valueMin",
        "Max": "valueMax",
        "Properties": "customDimensions",
        "OperationName": "operation_Name",
        "AppRoleName": "cloud_RoleName",
    },
    "requests": {
        "TimeGenerated": "timestamp",
        "Id": "id",
        "Name": "name",
        "Url": "url",
        "ResultCode": "resultCode",
        "Success": "success",
        "DurationMs": "duration",
        "Properties": "customDimensions",
        "OperationName": "operation_Name",
        "AppRoleName": "cloud_RoleName",
        "ItemCount": "itemCount",
        "OperationId": "operation_Id",
    },
    "dependencies": {
        "TimeGenerated": "timestamp",
        "Id": "id",
        "Target": "target",
        "DependencyType": "type",
        "Name": "name",
        "Data": "data",
        "Success": "success",
        "ResultCode": "resultCode",
        "DurationMs": "duration",
        "Properties": "customDimensions",
        "OperationId": "operation_Id",
        "OperationName": "operation_Name",
        "AppRoleName": "cloud_RoleName",
        "ItemCount": "itemCount",
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customMetrics": ("timestamp", "name"),
    "requests": ("timestamp", "resultCode"),
    # A backend call is only of use joined to its request.
    "dependencies": ("timestamp", "operation_Id"),
}
_HEADER_SUFFIX = re.compile(r"^(?P<name>.*?)\s*\[(?P<zone>[^\]]*)\]$")
# The portal's en-US display format: month/day/year, 12-hour clock, milliseconds optional.
_PORTAL_TIME = re.compile(
    r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4}),?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"\s*(?P<ampm>[AaPp][Mm])?$"
)


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (missing, not UTF-8, wrong columns)."""


class RowError(ValueError):
    """One value of one row is wrong; the message says which and why."""


@dataclass(frozen=True)
class BadRow:
    line: int  # the file line the record starts on (the header is line 1)
    message: str
    fields: tuple[str, ...] = ()


@dataclass
class ImportResult:
    table: str
    rows: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def import_csv(path: Path, table: str, store: Store | None, *, rejects: Path | None = None) -> ImportResult:
    """Check every row of ``path``, append the valid ones to ``store`` (None: check only)."""
    if table not in SCHEMAS:
        raise ImportFileError(f"unknown table '{table}' (tables: {', '.join(SCHEMAS)})")
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror})") from None
    with handle:
        result, batches, header = _read(handle, table, path)
    if rejects is not None and result.bad_rows:
        _write_rejects(rejects, header, result.bad_rows)
    if store is not None and result.rows:
        store.append(table, pa.concat_tables(batches))
    return result


def _read(handle: TextIO, table: str, path: Path) -> tuple[ImportResult, list[pa.Table], list[str]]:
    result = ImportResult(table)
    batches: list[pa.Table] = []
    pending: list[dict[str, Any]] = []
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError(f"{path} is empty")
        columns, result.ignored_columns = map_columns(header, table)
        parse_row = row_parser(table)
        for line, fields in _records(reader):
            if len(fields) != len(header):
                result.bad_rows.append(
                    BadRow(line, f"has {len(fields)} fields, the header has {len(header)}", tuple(fields))
                )
                continue
            try:
                raw = {name: fields[i] for i, name in columns.items()}
                pending.append(parse_row(raw))
            except RowError as exc:
                result.bad_rows.append(BadRow(line, str(exc), tuple(fields)))
                continue
            if len(pending) >= BATCH_ROWS:
                batches.append(appinsights.table(table, pending))
                pending = []
    except UnicodeDecodeError:
        raise ImportFileError(
            f"{path} is not UTF-8 text (near line {reader.line_num + 1}); "
            "export it again or convert it to UTF-8"
        ) from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}:{reader.line_num}: not a readable CSV: {exc}") from None
    if pending:
        batches.append(appinsights.table(table, pending))
    result.rows = sum(b.num_rows for b in batches)
    return result, batches, header


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Records with the line each starts on (a quoted field may span lines); blank lines skipped."""
    start = reader.line_num + 1
    for fields in reader:
        if fields:
            yield start, fields
        start = reader.line_num + 1


def map_columns(header: list[str], table: str) -> tuple[dict[int, str], list[str]]:
    """Column positions by store column name, and the header names that map to nothing."""
    schema_names = set(SCHEMAS[table].names)
    aliases = ALIASES[table]
    columns: dict[int, str] = {}
    seen: dict[str, str] = {}
    ignored: list[str] = []
    for position, raw in enumerate(header):
        label = raw.replace("\ufeff", "").strip()
        name = label
        if match := _HEADER_SUFFIX.match(label):
            name = match["name"]
            if match["zone"].strip().upper() != "UTC" and aliases.get(name, name) == "timestamp":
                raise ImportFileError(
                    f"column '{label}' is not in UTC: set the Logs blade's time zone to UTC and export again"
                )
        target = name if name in schema_names else aliases.get(name)
        if target is None:
            ignored.append(label)
            continue
        if target in seen:
            raise ImportFileError(f"columns '{seen[target]}' and '{label}' both hold {target}")
        seen[target] = label
        columns[position] = target
    missing = [name for name in REQUIRED[table] if name not in seen]
    if table == "customMetrics" and not {"valueSum", "value"} & set(seen):
        missing.append("valueSum")
    if missing:
        raise ImportFileError(
            f"a {table} export needs the column(s) {', '.join(missing)}; this file has: "
            f"{', '.join(h.strip() for h in header)}"
        )
    return columns, ignored


def row_parser(table: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    return {"customMetrics": _metric_row, "requests": _request_row, "dependencies": _dependency_row}[table]


def _metric_row(raw: dict[str, str]) -> dict[str, Any]:
    value_sum = _number(raw, "valueSum")
    value = _number(raw, "value")
    if value_sum is None:
        value_sum = value
    if value_sum is None:
        raise RowError("valueSum is empty")
    return appinsights.metric_row(
        timestamp=_timestamp(raw),
        name=_text(raw, "name", required=True) or "",
        value=value,
        value_sum=value_sum,
        value_count=_count(raw, "valueCount"),
        value_min=_number(raw, "valueMin"),
        value_max=_number(raw, "valueMax"),
        value_stddev=_number(raw, "valueStdDev"),
        dimensions=_dimensions(raw),
        operation=_text(raw, "operation_Name"),
        role=_text(raw, "cloud_RoleName"),
        item_count=_count(raw, "itemCount"),
    )


def _request_row(raw: dict[str, str]) -> dict[str, Any]:
    return appinsights.request_row(
        timestamp=_timestamp(raw),
        id=_text(raw, "id"),
        name=_text(raw, "name"),
        url=_text(raw, "url"),
        result_code=_text(raw, "resultCode", required=True) or "",
        success=_bool(raw, "success"),  # empty: failed from status 400 on, as App Insights does
        duration_ms=_number(raw, "duration"),
        dimensions=_dimensions(raw),
        operation=_text(raw, "operation_Name"),
        role=_text(raw, "cloud_RoleName"),
        item_count=_count(raw, "itemCount"),
        operation_id=_text(raw, "operation_Id"),
    )


def _dependency_row(raw: dict[str, str]) -> dict[str, Any]:
    return appinsights.dependency_row(
        timestamp=_timestamp(raw),
        operation_id=_text(raw, "operation_Id", required=True),
        result_code=(_text(raw, "resultCode") or "").strip(),
        id=_text(raw, "id"),
        target=_text(raw, "target"),
        type=_text(raw, "type"),
        name=_text(raw, "name"),
        data=_text(raw, "data"),
        success=_bool(raw, "success"),
        duration_ms=_number(raw, "duration"),
        dimensions=_dimensions(raw),
        operation=_text(raw, "operation_Name"),
        role=_text(raw, "cloud_RoleName"),
        item_count=_count(raw, "itemCount"),
    )


# --- values -------------------------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """A naive UTC datetime from the portal's display format or ISO 8601."""
    text = text.strip()
    if match := _PORTAL_TIME.match(text):
        hour = int(match["hour"])
        if match["ampm"]:
            if not 1 <= hour <= 12:
                raise ValueError(text)
            hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
        micros = int((match["fraction"] or "0")[:6].ljust(6, "0"))
        return datetime(
            int(match["year"]), int(match["month"]), int(match["day"]),
            hour, int(match["minute"]), int(match["second"] or 0), micros,
        )  # fmt: skip
    iso = text.replace("Z", "+00:00").replace("z", "+00:00")
    parsed = datetime.fromisoformat(iso)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _timestamp(raw: dict[str, str]) -> datetime:
    text = raw.get("timestamp", "").strip()
    if not text:
        raise RowError("timestamp is empty")
    try:
        moment = parse_timestamp(text)
    except ValueError:
        raise RowError(
            f"timestamp '{text}' is not a time (expected e.g. 11/24/2026, 1:02:03.456 PM "
            "or 2026-11-24T13:02:03Z)"
        ) from None
    except OverflowError:  # in UTC it falls before year 1 or after 9999
        moment = None
    if moment is None or not EARLIEST <= moment.replace(tzinfo=UTC) < LATEST:
        raise RowError(
            f"timestamp '{text}' is out of range (from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d})"
        )
    return moment


def _text(raw: dict[str, str], key: str, required: bool = False) -> str | None:
    """Text as exported (unicode and inner spaces kept); a required one must not be blank."""
    value = raw.get(key)
    if not required:
        return value
    if value is None or not value.strip():
        raise RowError(f"{key} is empty")
    return value.strip()


def _number(raw: dict[str, str], key: str) -> float | None:
    text = raw.get(key, "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise RowError(f"{key} '{text}' is not a number") from None
    if not math.isfinite(number):
        raise RowError(f"{key} '{text}' is not a finite number")
    return number


def _count(raw: dict[str, str], key: str) -> int:
    """A count column; empty or absent means 1, as in App Insights."""
    number = _number(raw, key)
    if number is None:
        return 1
    if number < 0 or number != int(number) or number >= 2**31:
        raise RowError(f"{key} '{raw[key].strip()}' is not a whole number of items")
    return int(number)


def _bool(raw: dict[str, str], key: str) -> bool | None:
    text = raw.get(key, "").strip()
    if not text:
        return None
    try:
        return parse_bool(text)
    except ValueError:
        raise RowError(f"{key} '{text}' is not true or false") from None


def _dimensions(raw: dict[str, str]) -> str:
    """customDimensions as compact JSON text of an object (empty cell: no dimensions)."""
    text = raw.get("customDimensions", "").strip()
    if not text:
        return "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowError(f"customDimensions is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise RowError(f"customDimensions is nested more than {MAX_DIMENSION_DEPTH} levels deep") from None
    if _depth(value) > MAX_DIMENSION_DEPTH:
        raise RowError(f"customDimensions is nested more than {MAX_DIMENSION_DEPTH} levels deep")
    if not isinstance(value, dict):
        raise RowError('customDimensions must be a JSON object like {"API ID": "chat"}')
    return appinsights.dimensions_json(value)


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _write_rejects(path: Path, header: list[str], bad_rows: list[BadRow]) -> None:
    """The bad rows as they were, plus the line and the reason, to fix and import again."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "error", *header])
        for bad in bad_rows:
            writer.writerow([bad.line, bad.message, *bad.fields])
