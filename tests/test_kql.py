"""Query files, parameter parsing, bins and resolution errors (kql.py without an engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tokenboard import kql

NOW = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)

SAMPLE = kql.parse_query_file(
    """// Sample: tokens by day.
// Second title line.
// @param start_time: datetime = ago(24h)  Start (UTC)
// @param end_time: datetime = now()  End (UTC)
// @param bin_size: timespan = auto  Bin
// @param top: long = 10  How many
// @param names: dynamic = ["a","b"]  Names
// @param label: string  Required text
customMetrics | take 1
""",
    "sample",
)


# --- query files --------------------------------------------------------------------------


def test_header_gives_title_params_defaults_and_docs() -> None:
    assert SAMPLE.title == "Sample: tokens by day. Second title line."
    assert [(p.name, p.type, p.default) for p in SAMPLE.params] == [
        ("start_time", "datetime", "ago(24h)"),
        ("end_time", "datetime", "now()"),
        ("bin_size", "timespan", "auto"),
        ("top", "long", "10"),
        ("names", "dynamic", '["a","b"]'),  # a default is one word: no spaces in a list
        ("label", "string", None),
    ]
    assert SAMPLE.params[0].doc == "Start (UTC)"
    assert SAMPLE.body == "customMetrics | take 1\n"


def test_unknown_parameter_type_in_a_file_is_an_error() -> None:
    with pytest.raises(kql.QueryError, match="unknown type integer"):
        kql.parse_query_file("// @param n: integer = 1\nT\n", "bad")


def test_every_query_file_parses_and_binds_with_its_defaults() -> None:
    names = {"subscription_dimension": "Client Subscription", "api_dimension": "API ID",
             "model_dimension": "Model", "request_subscription_key": "Subscription Name",
             "request_api_key": "API Name", "total_metric": "Total Tokens",
             "prompt_metric": "Prompt Tokens", "completion_metric": "Completion Tokens",
             "retry_after_key": "Response-Retry-After", "response_body_key": "Response-Body",
             "cached_metric": "Prompt Cached Tokens",
             "reasoning_metric": "Completion Reasoning Tokens"}  # fmt: skip
    catalog = kql.catalog()
    assert len(catalog) >= 10
    for query in catalog.values():
        assert query.title, query.name
        bound = kql.bind(query, {}, names, now=NOW)
        assert set(bound.values) == {p.name for p in query.params}
        for p in query.params:
            assert f"let {p.name} = " in bound.text
        assert "{{" not in bound.text


def test_unknown_query_names_the_known_ones() -> None:
    with pytest.raises(kql.QueryError, match=r"unknown query 'nope' \(known: .*tokens_over_time"):
        kql.get_query("nope")


# --- parse_value -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ptype", "text", "expected"),
    [
        ("string", "plain text", "plain text"),
        ("string", '"quoted \\"json\\""', 'quoted "json"'),
        ("long", " 42 ", 42),
        ("long", "-7", -7),
        ("real", "2.5", 2.5),
        ("bool", "TRUE", True),
        ("bool", "no", False),
        ("datetime", "now()", NOW),
        ("datetime", "ago(90m)", NOW - timedelta(minutes=90)),
        ("datetime", "2026-11-24T13:02:03.456789Z", datetime(2026, 11, 24, 13, 2, 3, 456789, tzinfo=UTC)),
        ("datetime", "2026-11-24T14:02:03+01:00", datetime(2026, 11, 24, 13, 2, 3, tzinfo=UTC)),
        ("datetime", "2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),  # naive means UTC
        ("timespan", "30s", timedelta(seconds=30)),
        ("timespan", "1.5h", timedelta(minutes=90)),
        ("timespan", "250ms", timedelta(milliseconds=250)),
        ("timespan", "7d", timedelta(days=7)),
        ("dynamic", "a, b ,c", ["a", "b", "c"]),
        ("dynamic", '["a,b", "c"]', ["a,b", "c"]),
        ("dynamic", "", []),
        ("dynamic", "[]", []),
    ],
)
def test_parse_value_reads_each_type(ptype: str, text: str, expected: object) -> None:
    assert kql.parse_value(ptype, text, NOW) == expected


def test_parsed_datetimes_are_utc_aware() -> None:
    value = kql.parse_value("datetime", "2026-11-24T14:02:03+01:00")
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("ptype", "text"),
    [
        ("long", "1.5"),
        ("long", "ten"),
        ("real", "x"),
        ("bool", "maybe"),
        ("datetime", "yesterday"),
        ("datetime", "ago(1 hour)"),
        ("datetime", "24/11/2026"),
        ("timespan", "5x"),
        ("timespan", "-5m"),
        ("dynamic", "[1, 2"),
        ("string", '"unterminated'),
    ],
)
def test_parse_value_rejects_bad_text_with_the_type_named(ptype: str, text: str) -> None:
    with pytest.raises(kql.QueryError, match=f"not a valid {ptype}|not a timespan"):
        kql.parse_value(ptype, text, NOW)


def test_parse_value_rejects_unknown_type() -> None:
    with pytest.raises(kql.QueryError, match="unknown parameter type"):
        kql.parse_value("guid", "x")


# --- auto_bin ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(minutes=30), timedelta(minutes=1)),
        (timedelta(minutes=200), timedelta(minutes=1)),  # exactly 200 points still fits
        (timedelta(minutes=201), timedelta(minutes=5)),
        (timedelta(hours=24), timedelta(minutes=15)),
        (timedelta(days=7), timedelta(hours=1)),
        (timedelta(days=30), timedelta(hours=6)),
        (timedelta(days=90), timedelta(hours=12)),
        (timedelta(days=180), timedelta(days=1)),
        (timedelta(days=3650), timedelta(days=1)),  # the largest bin, even past 200 points
    ],
)
def test_auto_bin_picks_the_smallest_bin_within_200_points(span: timedelta, expected: timedelta) -> None:
    assert kql.auto_bin(NOW - span, NOW) == expected


def test_auto_bin_never_exceeds_max_points_below_the_largest_bin() -> None:
    for minutes in range(1, 200 * 86400 // 60, 997):
        span = timedelta(minutes=minutes)
        size = kql.auto_bin(NOW - span, NOW)
        assert span / size <= kql.MAX_POINTS or size == kql.BIN_SIZES[-1]
        smaller = [b for b in kql.BIN_SIZES if b < size]
        assert all(span / b > kql.MAX_POINTS for b in smaller)


# --- resolve and bind ----------------------------------------------------------------


def test_defaults_resolve_against_now_and_auto_bin_follows_the_range() -> None:
    values = kql.resolve(SAMPLE, {"label": "x"}, NOW)
    assert values["start_time"] == NOW - timedelta(hours=24)
    assert values["end_time"] == NOW
    assert values["bin_size"] == timedelta(minutes=15)
    assert values["top"] == 10


def test_string_values_of_typed_parameters_are_parsed_relative_to_now() -> None:
    values = kql.resolve(SAMPLE, {"label": "x", "start_time": "ago(7d)", "top": "3", "names": "p,q"}, NOW)
    assert values["start_time"] == NOW - timedelta(days=7)
    assert values["bin_size"] == timedelta(hours=1)
    assert values["top"] == 3
    assert values["names"] == ["p", "q"]


def test_unknown_parameter_names_the_ones_the_query_takes() -> None:
    with pytest.raises(kql.QueryError, match=r"no parameter 'stat_time' \(it takes: start_time, end_time"):
        kql.resolve(SAMPLE, {"label": "x", "stat_time": "ago(1h)"}, NOW)


def test_missing_required_parameter_is_named() -> None:
    with pytest.raises(kql.QueryError, match="needs a value for 'label'"):
        kql.resolve(SAMPLE, {}, NOW)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("top", True, "expects a long"),
        ("top", 2.5, "expects a long"),
        ("label", 5, "expects a string"),
        ("names", "[1,", "not a valid dynamic"),
        ("start_time", 1700000000, "expects a datetime"),
        ("bin_size", 60, "expects a timespan"),
    ],
)
def test_mistyped_values_are_rejected(name: str, value: object, message: str) -> None:
    with pytest.raises(kql.QueryError, match=message):
        kql.resolve(SAMPLE, {"label": "x", name: value}, NOW)


def test_start_after_end_is_rejected() -> None:
    with pytest.raises(kql.QueryError, match="start_time must be before end_time"):
        kql.resolve(SAMPLE, {"label": "x", "start_time": NOW, "end_time": NOW - timedelta(hours=1)}, NOW)


def test_bind_renders_one_typed_let_per_parameter_in_declared_order() -> None:
    bound = kql.bind(SAMPLE, {"label": 'say "hi"\n| take 1', "names": ["x"]}, now=NOW)
    lets = [line for line in bound.text.splitlines() if line.startswith("let ")]
    assert lets == [
        "let start_time = datetime(2026-11-23T13:00:00.000000Z);",
        "let end_time = datetime(2026-11-24T13:00:00.000000Z);",
        "let bin_size = 900s;",
        "let top = long(10);",
        'let names = dynamic(["x"]);',
        'let label = "say \\"hi\\"\\n| take 1";',
    ]
    assert bound.text.endswith("customMetrics | take 1\n")


@pytest.mark.parametrize(
    ("ptype", "value", "text"),
    [
        ("datetime", datetime(2026, 11, 24, 14, 2, 3, 7, tzinfo=timezone(timedelta(hours=1))),
         "datetime(2026-11-24T13:02:03.000007Z)"),
        ("datetime", datetime(999, 1, 2), "datetime(0999-01-02T00:00:00.000000Z)"),
        ("timespan", timedelta(hours=1), "3600s"),
        ("timespan", timedelta(seconds=-90), "-90s"),
        ("timespan", timedelta(seconds=1, microseconds=5), "timespan(1.000005s)"),
        ("timespan", timedelta(seconds=-1.5), "-timespan(1.500000s)"),
        ("timespan", timedelta(days=36500, microseconds=7), "timespan(3153600000.000007s)"),
        ("real", float("inf"), "real(+inf)"),
        ("bool", False, "false"),
        ("dynamic", ["a", 1, None, True], 'dynamic(["a", 1, null, true])'),
        ("string", "tab\there\0", '"tab\\there\\0"'),
    ],
)  # fmt: skip
def test_literals_are_typed_and_escaped(ptype: str, value: object, text: str) -> None:
    assert kql.literal(ptype, value) == text


def test_unpaired_surrogates_are_refused() -> None:
    with pytest.raises(kql.QueryError, match="unpaired surrogate"):
        kql.string_literal("a\ud800b")


def test_list_parameters_refuse_nested_objects() -> None:
    with pytest.raises(kql.QueryError, match="cannot hold"):
        kql.literal("dynamic", [{"a": 1}])


def test_a_bin_phase_is_an_offset_zero_or_more_not_a_width() -> None:
    query = kql.get_query("tokens_over_time")
    window = {"start_time": NOW - timedelta(days=1), "end_time": NOW, "bin_size": timedelta(days=1)}
    assert kql.resolve(query, window, NOW)["bin_phase"] == timedelta(0)  # the default: UTC midnight
    kolkata = kql.resolve(query, {**window, "bin_phase": timedelta(hours=18, minutes=30)}, NOW)
    assert kolkata["bin_phase"] == timedelta(hours=18, minutes=30)
    with pytest.raises(kql.OutOfRange, match="bin_phase must not be negative"):
        kql.resolve(query, {**window, "bin_phase": timedelta(hours=-1)}, NOW)
