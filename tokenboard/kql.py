"""Query files and parameter binding.

A query is a ``.kql`` file in ``queries/``. Its header declares the parameters::

    // Tokens over time, one series per metric name.
    // @param start_time: datetime = ago(24h)  Start of the range (UTC, inclusive)

Binding turns values into typed, escaped KQL literals in a ``let`` prelude, so the
text that runs is plain KQL that both backends (and the Logs blade) accept: the Log
Analytics API takes no parameter values of its own.

The shared prelude ``_tables.kql`` maps the team's dimension names onto columns. Its
``{{name}}`` slots take escaped string literals, because duckdb-kql translates only
literal keys in ``customDimensions[...]`` (a let-bound key fails in DuckDB).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from tokenboard.config import parse_bool

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"
# The shared preludes, by the tables they read: classic Application Insights or a workspace.
PRELUDES = {"app_insights": "_tables.kql", "workspace": "_tables_workspace.kql"}
TYPES = ("string", "long", "real", "bool", "datetime", "timespan", "dynamic")

_PARAM_LINE = re.compile(
    r"^//\s*@param\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>\w+)"
    r'(?:\s*=\s*(?P<default>"[^"]*"|\[[^\]]*\]|\S+))?\s*(?P<doc>.*)$'
)
_SLOT = re.compile(r"\{\{([a-z_]+)\}\}")
_TIMESPAN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_TIMESPAN_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_AGO = re.compile(r"^ago\((\d+(?:\.\d+)?(?:ms|s|m|h|d))\)$")
# Bins a chart can use, smallest first; auto picks the first that gives <= 200 points.
BIN_SIZES = tuple(timedelta(seconds=s) for s in (60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400))
MAX_POINTS = 200
# Times a parameter may hold. Telemetry is younger than the Unix epoch, and pandas' nanosecond
# timestamps, which every result passes through, end in April 2262.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
# A timespan parameter is a bin width: at most this many bins over the range (the Log
# Analytics API answers at most 500,000 rows).
MAX_BINS = 500_000
_SHOWN_CHARS = 60  # of a bad value, in an error message


class QueryError(ValueError):
    """A query name, parameter name or parameter value is wrong."""


class OutOfRange(QueryError):
    """A well-formed value beyond what a parameter can hold (the message gives the range)."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    doc: str = ""


@dataclass(frozen=True)
class QueryFile:
    """One parsed ``.kql`` file: its title, declared parameters and body."""

    name: str
    title: str
    params: tuple[Param, ...]
    body: str
    path: Path | None = None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise QueryError(f"query '{self.name}' has no parameter '{name}' (it takes: {known})")


@dataclass(frozen=True)
class BoundQuery:
    """A query with every parameter resolved, kept in the parts its text is made of.

    ``text`` is what runs and what the user sees: the shared table prelude, one ``let`` per
    parameter, the body. A backend that runs the prelude differently swaps that part.
    """

    name: str
    body: str
    prelude: str = ""
    lets: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.prelude + self.lets + self.body


def parse_query_file(text: str, name: str, path: Path | None = None) -> QueryFile:
    """Split a query file into header (title, ``@param`` lines) and body."""
    title_lines: list[str] = []
    params: list[Param] = []
    body_start = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("//"):
            if stripped:
                body_start = i
                break
            continue
        body_start = i + 1
        match = _PARAM_LINE.match(stripped)
        if match:
            ptype = match["type"]
            if ptype not in TYPES:
                raise QueryError(f"{name}: parameter {match['name']} has unknown type {ptype}")
            params.append(Param(match["name"], ptype, match["default"], match["doc"].strip()))
        elif not params:
            title_lines.append(stripped.lstrip("/").strip())
    title = " ".join(t for t in title_lines if t).strip()
    body = "\n".join(lines[body_start:]).strip() + "\n"
    return QueryFile(name=name, title=title, params=tuple(params), body=body, path=path)


@cache
def catalog(directory: Path = QUERIES_DIR) -> dict[str, QueryFile]:
    """All query files by name (file stem); files starting with ``_`` are preludes."""
    queries = {}
    for path in sorted(directory.glob("*.kql")):
        if not path.name.startswith("_"):
            queries[path.stem] = parse_query_file(path.read_text("utf-8"), path.stem, path)
    return queries


def get_query(name: str, directory: Path = QUERIES_DIR) -> QueryFile:
    queries = catalog(directory)
    if name not in queries:
        raise QueryError(f"unknown query '{name}' (known: {', '.join(sorted(queries))})")
    return queries[name]


@cache
def _prelude_template(file: str, directory: Path = QUERIES_DIR) -> str:
    text = (directory / file).read_text("utf-8")
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))


def render_prelude(names: Mapping[str, str], file: str = PRELUDES["app_insights"]) -> str:
    """A prelude file (e.g. ``_tables.kql``) with each ``{{slot}}`` filled by an escaped string literal."""

    def fill(match: re.Match[str]) -> str:
        if match[1] not in names:
            raise QueryError(f"prelude slot {{{{{match[1]}}}}} has no configured value")
        return string_literal(str(names[match[1]]))

    return _SLOT.sub(fill, _prelude_template(file)).strip() + "\n"


# --- literals -------------------------------------------------------------------------

_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def string_literal(value: str) -> str:
    """A KQL string literal that reads back as exactly ``value``."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise QueryError("text contains an unpaired surrogate, which KQL cannot hold")
    return '"' + "".join(_STRING_ESCAPES.get(c, c) for c in value) + '"'


def literal(ptype: str, value: Any) -> str:
    """Render a Python value as a typed KQL literal of ``ptype``."""
    if value is None:
        return f"{ptype}(null)" if ptype != "string" else '""'
    if ptype == "string":
        return string_literal(str(value))
    if ptype == "long":
        return f"long({int(value)})"
    if ptype == "real":
        number = float(value)
        if math.isnan(number):
            return "real(nan)"
        if math.isinf(number):
            return "real(+inf)" if number > 0 else "real(-inf)"
        return f"real({number!r})"
    if ptype == "bool":
        return "true" if value else "false"
    if ptype == "datetime":
        # isoformat, not strftime: %Y does not pad years before 1000 to four digits.
        return f"datetime({_utc(value).replace(tzinfo=None).isoformat(timespec='microseconds')}Z)"
    if ptype == "timespan":
        micros = round(_as_timedelta(value) / timedelta(microseconds=1))
        sign, micros = ("-" if micros < 0 else ""), abs(micros)
        if micros % 1_000_000:  # integer digits: a float loses microseconds past ~100 years
            return f"{sign}timespan({micros // 1_000_000}.{micros % 1_000_000:06d}s)"
        return f"{sign}{micros // 1_000_000}s"
    if ptype == "dynamic":
        return f"dynamic({_dynamic_body(value)})"
    raise QueryError(f"unknown parameter type {ptype}")


def _dynamic_body(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_dynamic_body(v) for v in value) + "]"
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(value)
    if value is None:
        return "null"
    raise QueryError(f"a list parameter cannot hold {value!r}")


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise QueryError(f"expected a datetime, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if hasattr(value, "to_pytimedelta"):
        span: timedelta = value.to_pytimedelta()
        return span
    raise QueryError(f"expected a timespan, got {value!r}")


# --- parsing values (CLI, URL, defaults) ----------------------------------------------


def parse_timespan(text: str) -> timedelta:
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise QueryError(f"'{shown(text)}' is not a timespan (use e.g. 30s, 15m, 1h, 7d)")
    try:
        return timedelta(seconds=float(match[1]) * _TIMESPAN_UNITS[match[2]])
    except OverflowError:
        raise OutOfRange(f"'{shown(text)}' is too long a timespan") from None


def shown(text: str) -> str:
    """A value as an error message quotes it: cut short when it is long."""
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def check_time(value: datetime, text: str = "") -> datetime:
    """``value`` if it lies between EARLIEST and LATEST; else a QueryError that says so."""
    if not EARLIEST <= _utc(value) <= LATEST:
        raise OutOfRange(
            f"'{shown(text or value.isoformat())}' is out of range "
            f"(times from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"
        )
    return value


def parse_value(ptype: str, text: str, now: datetime | None = None) -> Any:
    """Parse text (a default or a ``--param`` value) into the Python value of ``ptype``."""
    text = text.strip()
    try:
        if ptype == "string":
            return json.loads(text) if text.startswith('"') else text
        if ptype == "long":
            return int(text)
        if ptype == "real":
            return float(text)
        if ptype == "bool":
            return parse_bool(text)
        if ptype == "datetime":
            now = now or datetime.now(UTC)
            if text == "now()":
                return now
            if ago := _AGO.match(text):
                return check_time(now - parse_timespan(ago[1]), text)
            return check_time(_utc(datetime.fromisoformat(text.replace("Z", "+00:00"))), text)
        if ptype == "timespan":
            return parse_timespan(text)
        if ptype == "dynamic":
            if text.startswith("["):
                value = json.loads(text)
                if not isinstance(value, list) or any(isinstance(v, (list, dict)) for v in value):
                    raise ValueError(text)  # a list of values, not of lists
                return value
            return [part.strip() for part in text.split(",") if part.strip()]
    except OutOfRange:
        raise
    except OverflowError:  # a time before year 1 or after 9999
        raise OutOfRange(
            f"'{shown(text)}' is out of range (times from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"
        ) from None
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise QueryError(f"'{shown(text)}' is not a valid {ptype}") from None
    raise QueryError(f"unknown parameter type {ptype}")


def auto_bin(start: datetime, end: datetime) -> timedelta:
    """The smallest chart bin that keeps the range at or under MAX_POINTS points."""
    span = end - start
    for size in BIN_SIZES:
        if span / size <= MAX_POINTS:
            return size
    return BIN_SIZES[-1]


def _check_type(param: Param, value: Any, now: datetime | None = None) -> Any:
    """Accept values of the parameter's type (and strings, parsed); reject the rest."""
    if isinstance(value, str) and param.type != "string":
        return parse_value(param.type, value, now)
    expected = {
        "string": (str,),
        "long": (int,),
        "real": (int, float),
        "bool": (bool,),
        "datetime": (datetime,),
        "timespan": (timedelta,),
        "dynamic": (list, tuple),
    }[param.type]
    if isinstance(value, bool) and param.type in ("long", "real"):
        raise QueryError(f"parameter '{param.name}' expects a {param.type}, got {value!r}")
    if not isinstance(value, expected):
        raise QueryError(f"parameter '{param.name}' expects a {param.type}, got {value!r}")
    return list(value) if isinstance(value, (list, tuple)) else value


def resolve(query: QueryFile, params: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Every declared parameter's value: the given one, else its default."""
    now = now or datetime.now(UTC)
    for name in params:
        query.param(name)  # raises on an unknown name
    values: dict[str, Any] = {}
    auto: list[Param] = []
    for p in query.params:
        if p.name in params and params[p.name] is not None:
            values[p.name] = _check_type(p, params[p.name], now)
        elif p.default == "auto" and p.type == "timespan":
            auto.append(p)
        elif p.default is None:
            raise QueryError(f"query '{query.name}' needs a value for '{p.name}'")
        else:
            values[p.name] = parse_value(p.type, p.default, now)
    for p in auto:
        start, end = values.get("start_time"), values.get("end_time")
        if start is None or end is None:
            raise QueryError(f"{query.name}: '{p.name} = auto' needs start_time and end_time")
        values[p.name] = auto_bin(start, end)
    if "start_time" in values and "end_time" in values and values["start_time"] >= values["end_time"]:
        raise QueryError("start_time must be before end_time")
    for p in query.params:
        if p.type == "datetime" and values[p.name] is not None:
            check_time(values[p.name])
        if p.type == "timespan" and p.name.endswith("_phase"):
            _check_phase(p.name, values[p.name])
        elif p.type == "timespan":
            _check_bins(p.name, values[p.name], values.get("start_time"), values.get("end_time"))
    return values


def _check_phase(name: str, offset: timedelta) -> None:
    """A ``*_phase`` timespan is where bins start after the epoch's grid (local midnight in a
    time zone, tokenboard/localtime.py): zero or more, not a width."""
    if offset < timedelta(0):
        raise OutOfRange(f"{name} must not be negative")


def _check_bins(name: str, width: timedelta, start: datetime | None, end: datetime | None) -> None:
    """A bin width must be positive and leave at most MAX_BINS bins in the range."""
    if width <= timedelta(0):
        raise OutOfRange(f"{name} must be longer than 0s")
    if start is None or end is None or (end - start) / width <= MAX_BINS:
        return
    least = math.ceil((end - start).total_seconds() / MAX_BINS)
    raise OutOfRange(
        f"{name} = {_span(width)} cuts the range into {(end - start) // width:,} bins; "
        f"use at least {least}s (at most {MAX_BINS:,} bins)"
    )


def _span(width: timedelta) -> str:
    seconds = width.total_seconds()
    return f"{seconds:g}s" if seconds >= 1 else f"{seconds * 1000:g}ms"


def bind(
    query: QueryFile,
    params: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    prelude: str = PRELUDES["app_insights"],
    now: datetime | None = None,
) -> BoundQuery:
    """A query's parts: the table prelude (with ``names``), one ``let`` per parameter, its body."""
    values = resolve(query, params or {}, now)
    lets = "".join(f"let {p.name} = {literal(p.type, values[p.name])};\n" for p in query.params)
    rendered = render_prelude(names, prelude) if names is not None else ""
    return BoundQuery(name=query.name, body=query.body, prelude=rendered, lets=lets, values=values)
