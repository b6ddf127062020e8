"""The binder's promise, proved on the local engine: any value comes back unchanged and
never changes the shape of the query it is bound into.

Values are rendered as typed KQL literals in a ``let`` prelude (the Log Analytics API takes
no parameter values), so a quote, a backslash, a newline or ``| take 1`` inside a value
must stay inside its literal. Each property runs the bound text through duckdb-kql.
"""

from __future__ import annotations

import json
import math
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import duckdb_kql
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tokenboard import kql
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store

# Text that would end a literal, start an operator, comment out the rest or inject a statement.
NASTY = (
    '"',
    "'",
    "\\",
    '\\"',
    "\n",
    "\r\n",
    "\t",
    "\0",
    "| take 1",
    "| where false",
    '"; drop table customMetrics; //',
    "'; print x = 1 //",
    "let x = 1;",
    "// comment",
    "/* block */",
    "{{total_metric}}",
    "😀",
    "müller-ağ-東京",
    "\u2028",
    "\x1b[31m",
    "h'abc'",
    '@"verbatim"',
    "```",
    "$left",
    "",
)
nasty_text = st.lists(st.sampled_from(NASTY) | st.text(max_size=8), max_size=5).map("".join)
any_text = st.text() | nasty_text

PROBE = kql.parse_query_file(
    """// Probe: echoes its parameters without changing its shape.
// @param s: string = benign  Any text
// @param names: dynamic = []  Any list of text
// @param probe: string = benign  A text to look for in names
range i from 1 to 3 step 1
| extend s_copy = s, found = probe in (names), n = array_length(names)
""",
    "probe",
)
PROBE_COLUMNS = ["i", "s_copy", "found", "n"]


@cache
def _engine():
    connection = duckdb_kql.connect()
    connection.execute("SET TimeZone='UTC'")
    return connection


def _run(text: str) -> pd.DataFrame:
    return duckdb_kql.kql(_engine().cursor(), text).df()


def _echo(ptype: str, value: object) -> object:
    """Bind one value as ``let v = <literal>`` and read it back with ``print``."""
    frame = _run(f"let v = {kql.literal(ptype, value)};\nprint v = v")
    assert list(frame.columns) == ["v"] and len(frame) == 1
    return frame["v"].iloc[0]


# --- scalars come back unchanged -------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(any_text)
@example("| take 1")
@example('"; drop')
@example("let x = 1; // rest")
@example("\0")
@example("😀\\n\n")
def test_any_string_reads_back_unchanged(value: str) -> None:
    assert _echo("string", value) == value


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.none() | st.builds(timezone, st.timedeltas(-timedelta(hours=23), timedelta(hours=23))),
    )
)
@example(datetime(2026, 11, 24, 13, 2, 3, 456789, tzinfo=UTC))
@example(datetime(999, 1, 1, 0, 0, 0, 1))  # a three-digit year still needs four digits
def test_any_datetime_reads_back_to_the_microsecond_in_utc(value: datetime) -> None:
    expected = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    assert pd.Timestamp(_echo("datetime", value)).to_pydatetime() == expected


@settings(max_examples=100, deadline=None)
@given(st.timedeltas(min_value=-timedelta(days=100_000), max_value=timedelta(days=100_000)))
@example(timedelta(microseconds=1))
@example(timedelta(seconds=-1.5))  # negative and fractional
@example(timedelta(days=36_500, microseconds=7))  # beyond a float's microsecond precision
def test_any_timespan_reads_back_to_the_microsecond(value: timedelta) -> None:
    assert pd.Timedelta(_echo("timespan", value)).to_pytimedelta() == value


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_long_reads_back_unchanged(value: int) -> None:
    assert int(_echo("long", value)) == value


@settings(max_examples=100, deadline=None)
@given(st.floats())
def test_any_real_reads_back_unchanged(value: float) -> None:
    back = float(_echo("real", value))
    assert (math.isnan(back) and math.isnan(value)) or back == value


@settings(max_examples=100, deadline=None)
@given(st.lists(any_text, max_size=6))
def test_any_list_of_text_reads_back_unchanged(values: list[str]) -> None:
    assert json.loads(_echo("dynamic", values)) == values


# --- values never change the query they are bound into ---------------------------------


@settings(max_examples=150, deadline=None)
@given(any_text, st.lists(any_text, max_size=5))
@example("| take 1", ["| take 1"])
@example('"; drop', ['"]) | take 1 //'])
def test_bound_values_never_alter_the_query(text: str, names: list[str]) -> None:
    benign = _benign_probe()
    bound = kql.bind(PROBE, {"s": text, "names": names, "probe": names[0] if names else text})
    frame = _run(bound.text)
    assert list(frame.columns) == list(benign.columns) == PROBE_COLUMNS
    assert len(frame) == len(benign) == 3
    assert frame["i"].tolist() == [1, 2, 3]
    assert frame["s_copy"].tolist() == [text] * 3
    assert frame["n"].tolist() == [len(names)] * 3
    assert frame["found"].tolist() == [bool(names)] * 3


@cache
def _benign_probe() -> pd.DataFrame:
    return _run(kql.bind(PROBE, {"s": "benign", "names": ["benign"], "probe": "benign"}).text)


@settings(max_examples=100, deadline=None)
@given(st.lists(any_text, min_size=1, max_size=5), any_text)
def test_in_matches_exactly_the_listed_strings(names: list[str], other: str) -> None:
    frame = _run(kql.bind(PROBE, {"names": names, "probe": other}).text)
    assert frame["found"].tolist() == [other in names] * 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # No backslash: duckdb-kql does not escape it in the JSON path it makes of
    # customDimensions["..."] (a key ending in a backslash fails; a key of two matches nothing).
    # Settings strip surrounding whitespace from names, so a name as configured has none.
    dimension=any_text.filter(lambda t: t.strip() == t != "" and "\\" not in t),
    subscription=any_text,
    other=any_text,
)
@example(dimension='Client "Subscription" // x', subscription="| take 1", other="contoso")
def test_configured_dimension_names_and_filter_values_bind_safely(
    dimension: str, subscription: str, other: str
) -> None:
    """Through a real query file on the local backend: names from config, values from users."""
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    rows = [
        {
            "timestamp": (start + timedelta(minutes=i)).replace(tzinfo=None),
            "name": "Total Tokens",
            "value": 10.0,
            "valueSum": 10.0,
            "valueCount": 1,
            "customDimensions": {dimension: sub, "API ID": "chat"},
            "itemCount": 1,
        }
        for i, sub in enumerate([subscription, other, subscription])
    ]
    config = Settings(subscription_dimension=dimension, seed_on_start=False)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        store.append("customMetrics", rows)
        backend = LocalBackend(config, store)
        window = {"start_time": start, "end_time": start + timedelta(hours=1)}
        everything = backend.run_query(backend.bind("call_counts", window)).frame
        chosen = backend.run_query(
            backend.bind("call_counts", {**window, "subscriptions": [subscription]})
        ).frame
        nobody = backend.run_query(
            backend.bind("call_counts", {**window, "subscriptions": ["\0not-a-subscription\0"]})
        ).frame
    expected = {subscription: 2} if other != subscription else {subscription: 3}
    if other != subscription:
        expected[other] = 1
    assert dict(zip(everything["subscription"], everything["calls"], strict=True)) == expected
    assert chosen["subscription"].tolist() == [subscription]
    assert chosen["calls"].tolist() == [expected[subscription]]
    assert list(nobody.columns) == list(everything.columns) and nobody.empty
