"""The shape of Application Insights rows: tables, columns, dimensions, and the keys APIM adds.

Everything that writes telemetry builds it here: the local gateway (row by row), the demo
and the bench seeder (column by column), and the importer (from exported CSV). So a
``customMetrics`` row means the same wherever it came from. To add a table, add its schema to
``SCHEMAS`` and a row builder beside the others; new columns go at the end of a schema (segments
written before them read back with nulls there).

``requests`` and ``dependencies`` rows of one call share ``operation_Id``: APIM writes a
``dependencies`` row for each call it forwards to a backend, none for a call a policy refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from tokenboard.config import Telemetry
from tokenboard.export import json_text

# Column names and types of the classic Application Insights schema.
SCHEMAS: dict[str, pa.Schema] = {
    "customMetrics": pa.schema(
        [
            ("timestamp", pa.timestamp("us")),
            ("name", pa.string()),
            ("value", pa.float64()),
            ("valueSum", pa.float64()),
            ("valueCount", pa.int32()),
            ("valueMin", pa.float64()),
            ("valueMax", pa.float64()),
            ("valueStdDev", pa.float64()),
            ("customDimensions", pa.string()),
            ("operation_Name", pa.string()),
            ("cloud_RoleName", pa.string()),
            ("itemCount", pa.int32()),
        ]
    ),
    "requests": pa.schema(
        [
            ("timestamp", pa.timestamp("us")),
            ("id", pa.string()),
            ("name", pa.string()),
            ("url", pa.string()),
            ("resultCode", pa.string()),
            ("success", pa.bool_()),
            ("duration", pa.float64()),
            ("customDimensions", pa.string()),
            ("operation_Name", pa.string()),
            ("cloud_RoleName", pa.string()),
            ("itemCount", pa.int32()),
            ("operation_Id", pa.string()),
        ]
    ),
    "dependencies": pa.schema(
        [
            ("timestamp", pa.timestamp("us")),
            ("id", pa.string()),
            ("target", pa.string()),
            ("type", pa.string()),
            ("name", pa.string()),
            ("data", pa.string()),
            ("success", pa.bool_()),
            ("resultCode", pa.string()),
            ("duration", pa.float64()),
            ("customDimensions", pa.string()),
            ("operation_Id", pa.string()),
            ("operation_Name", pa.string()),
            ("cloud_RoleName", pa.string()),
            ("itemCount", pa.int32()),
        ]
    ),
}
TABLES = tuple(SCHEMAS)
JSON_COLUMNS = ("customDimensions",)

# Keys APIM puts in customDimensions beside the team's own (it spends 5 of the 10 a metric may
# have); the dashboard ignores what it does not map.
APIM_METRIC_KEYS = ("Region", "Service ID", "Service Name", "Service Type")
# Metric names newer policy versions emit beside Total/Prompt/Completion. They overlap Prompt
# and Completion, so they are never part of Total.
CACHED_METRIC = "Prompt Cached Tokens"
REASONING_METRIC = "Completion Reasoning Tokens"
# What APIM's diagnostic settings put in a requests row's customDimensions when "Headers to log"
# names a response header ("Response-<header>") and "Number of payload bytes to log" is set for
# the frontend response ("Response-Body"). The names are configurable (settings.telemetry).
RESPONSE_HEADER_PREFIX = "Response-"
RESPONSE_BODY_KEY = "Response-Body"
DEPENDENCY_TYPE = "HTTP"


def apim_keys(region: str, service_id: str, service_name: str) -> dict[str, str]:
    """What APIM adds to every metric's customDimensions."""
    return dict(zip(APIM_METRIC_KEYS, (region, service_id, service_name, "API Management"), strict=True))


def dimensions_json(dimensions: Mapping[str, Any]) -> str:
    """customDimensions as stored: compact JSON text of an object, unicode kept."""
    return json_text(dict(dimensions))


def metric_dimensions(
    names: Telemetry, subscription: str, api: str, model: str | None, apim: Mapping[str, str]
) -> str:
    """An ``llm-emit-token-metric`` row's dimensions (no model key when the policy has none)."""
    dims = {names.subscription_dimension: subscription, names.api_dimension: api}
    if model is not None:
        dims[names.model_dimension] = model
    return dimensions_json(dims | dict(apim))


def request_dimensions(names: Telemetry, subscription: str | None, api: str, extra: Mapping[str, str]) -> str:
    """A ``requests`` row's dimensions; no subscription key when there is none (a 401)."""
    dims: dict[str, str] = {}
    if subscription:
        dims[names.request_subscription_key] = subscription
    dims[names.request_api_key] = api
    return dimensions_json(dims | dict(extra))


def metric_row(
    *,
    timestamp: datetime,
    name: str,
    value_sum: float,
    value_count: int = 1,
    value_min: float | None = None,
    value_max: float | None = None,
    value_stddev: float | None = None,
    value: float | None = None,
    dimensions: str = "{}",
    operation: str | None = "",
    role: str | None = "",
    item_count: int = 1,
) -> dict[str, Any]:
    """One pre-aggregated ``customMetrics`` row (``value`` is the sum unless given)."""
    return {
        "timestamp": timestamp,
        "name": name,
        "value": value_sum if value is None else value,
        "valueSum": value_sum,
        "valueCount": value_count,
        "valueMin": value_min,
        "valueMax": value_max,
        "valueStdDev": value_stddev,
        "customDimensions": dimensions,
        "operation_Name": operation,
        "cloud_RoleName": role,
        "itemCount": item_count,
    }


def request_row(
    *,
    timestamp: datetime,
    result_code: str,
    operation_id: str | None = "",
    id: str | None = "",
    name: str | None = "",
    url: str | None = "",
    success: bool | None = None,
    duration_ms: float | None = None,
    dimensions: str = "{}",
    operation: str | None = "",
    role: str | None = "",
    item_count: int = 1,
) -> dict[str, Any]:
    """One ``requests`` row; ``success`` follows App Insights (failed from status 400) unless given."""
    if success is None:
        success = not (result_code.isdigit() and int(result_code) >= 400)
    return {
        "timestamp": timestamp,
        "id": id,
        "name": name,
        "url": url,
        "resultCode": result_code,
        "success": success,
        "duration": duration_ms,
        "customDimensions": dimensions,
        "operation_Name": operation,
        "cloud_RoleName": role,
        "itemCount": item_count,
        "operation_Id": operation_id,
    }


def dependency_row(
    *,
    timestamp: datetime,
    result_code: str,
    operation_id: str | None,
    target: str | None = "",
    name: str | None = "",
    data: str | None = "",
    id: str | None = "",
    type: str | None = DEPENDENCY_TYPE,
    success: bool | None = None,
    duration_ms: float | None = None,
    dimensions: str = "{}",
    operation: str | None = "",
    role: str | None = "",
    item_count: int = 1,
) -> dict[str, Any]:
    """One ``dependencies`` row: a call the gateway forwarded to a backend, and how it answered.

    ``result_code`` is the backend's status ("" when it never answered); ``success`` follows
    App Insights (failed from status 400, or without an answer) unless given.
    """
    if success is None:
        success = result_code.isdigit() and int(result_code) < 400
    return {
        "timestamp": timestamp,
        "id": id,
        "target": target,
        "type": type,
        "name": name,
        "data": data,
        "success": success,
        "resultCode": result_code,
        "duration": duration_ms,
        "customDimensions": dimensions,
        "operation_Id": operation_id,
        "operation_Name": operation,
        "cloud_RoleName": role,
        "itemCount": item_count,
    }


def table(name: str, data: object) -> pa.Table:
    """Rows (an Arrow table, a DataFrame, a list of row dicts, or a dict of columns) in the
    table's schema: missing columns become nulls, dimensions become JSON text."""
    if name not in SCHEMAS:
        raise KeyError(f"unknown table '{name}' (tables: {', '.join(TABLES)})")
    schema = SCHEMAS[name]
    if isinstance(data, pa.Table):
        arrow = data
    elif isinstance(data, list):
        arrow = pa.Table.from_pylist([_jsonify(r) for r in data])
    elif isinstance(data, dict):
        arrow = pa.table(data)
    else:  # a pandas DataFrame
        frame = data.copy()  # type: ignore[attr-defined]
        for col in JSON_COLUMNS:
            if col in frame.columns:
                frame[col] = frame[col].map(_json_column_text)
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
    columns = []
    for fld in schema:
        if fld.name in arrow.column_names:
            column = arrow.column(fld.name)
            if pa.types.is_timestamp(column.type) and column.type.tz is not None:
                column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
            columns.append(column.cast(fld.type))
        else:
            columns.append(pa.nulls(arrow.num_rows, fld.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _jsonify(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_json_column_text(v) if k in JSON_COLUMNS else v) for k, v in row.items()}


def _json_column_text(value: object) -> str:
    """customDimensions as compact JSON text, whatever form it arrives in."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return json_text(value)
