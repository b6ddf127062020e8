"""Bad input to ``python -m tokenboard`` is exit status 2 and one sentence on stderr, never
"unexpected ..." (exit 1) or a traceback: times out of range, absurd bins and counts, JSON
nested thousands deep, ports that do not exist. Real subprocesses (the ``run`` fixture)."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import pytest
from cli_helpers import one_line_error

from tokenboard.store import Store

DEEP_LIST = "[" * 5_000 + "]" * 5_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["query", "tokens_over_time", "--param", "start_time=ago(100000000d)"],
            "--param start_time: 'ago(100000000d)' is out of range (times from 1970-01-01 to 2262-01-01)",
        ),
        (
            ["query", "tokens_over_time", "--param", "start_time=9999-12-31T23:59:59-05:00"],
            "--param start_time: '9999-12-31T23:59:59-05:00' is out of range",
        ),
        (
            ["query", "limit_hits", "--param", "end_time=0001-01-01T00:00:00+01:00"],
            "--param end_time: '0001-01-01T00:00:00+01:00' is out of range",
        ),
        (["query", "tokens_over_time", "--param", "bin_size=0s"], "bin_size must be longer than 0s"),
        (
            ["query", "tokens_over_time", "--param", "bin_size=1ms"],
            "bin_size = 1ms cuts the range into 86,400,000 bins; use at least 1s (at most 500,000 bins)",
        ),
        (
            ["query", "requests_over_time", "--param", "bin_size=99999999999d"],
            "--param bin_size: '99999999999d' is too long a timespan",
        ),
        (
            ["query", "usage_pivot", "--param", f"subscriptions={DEEP_LIST}"],
            "--param subscriptions: '[[[[[",  # quoted, cut short
        ),
        (
            ["query", "usage_pivot", "--param", 'apis=[["chat"]]'],
            "--param apis: '[[\"chat\"]]' is not a valid dynamic",
        ),
        (
            ["report", "usage_pivot", "--param", "start_time=ago(100000000d)"],
            "--param start_time: 'ago(100000000d)' is out of range",
        ),
        (["seed", "--days", "1e9"], "argument --days: must be more than 0 and at most 3,660, not 1e9"),
        (["seed", "--seed", "-1"], "argument --seed: must be from 0 to 4,294,967,295, not -1"),
        (["seed", "--rows", "0"], "argument --rows: must be from 1 to 100,000,000, not 0"),
        (
            ["seed", "--end", "9999-12-31T23:59:59-05:00"],
            "--end: '9999-12-31T23:59:59-05:00' is out of range",
        ),
        (["gateway", "--port", "99999"], "argument --port: must be a port number from 0 to 65535, not 99999"),
        (["gateway", "--port", "http"], "argument --port: must be a whole number, not 'http'"),
        (["gateway", "--max-connections", "0"], "argument --max-connections: must be at least 1"),
        (["gateway", "--header-timeout", "0"], "argument --header-timeout: must be at least 1"),
        (["gateway", "--body-timeout", "-3"], "argument --body-timeout: must not be negative"),
    ],
    ids=lambda value: value[1] if isinstance(value, list) and len(value) > 1 else None,
)
def test_bad_input_is_exit_2_and_one_line(run, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert message in one_line_error(result)
    if len(message) > 60:
        assert len(one_line_error(result)) < 400  # a 10,000-character value is not echoed whole


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TOKENBOARD_GATEWAY_MOCK_LATENCY_MS": "99999999"},
            "'gateway_mock_latency_ms' must be at most 600,000",
        ),
        ({"TOKENBOARD_GATEWAY_MAX_CONNECTIONS": "0"}, "'gateway_max_connections' must be positive"),
        (
            {"TOKENBOARD_GATEWAY_BODY_TIMEOUT_SECONDS": "soon"},
            "'gateway_body_timeout_seconds' must be a whole number",
        ),
    ],
)
def test_bad_gateway_settings_are_exit_2_and_one_line(run, env: dict[str, str], message: str) -> None:
    result = run("gateway", "--list-subscriptions", env=env)
    assert result.returncode == 2
    assert message in one_line_error(result)


def test_import_rejects_rows_out_of_range_or_nested_too_deep_and_keeps_the_rest(run, tmp_path: Path) -> None:
    export = tmp_path / "query_data.csv"
    rows = [
        ["timestamp [UTC]", "name", "valueSum", "customDimensions"],
        ["2026-11-24T13:00:00Z", "Total Tokens", "5", '{"API ID":"chat"}'],
        ["9999-12-31T23:59:59-05:00", "Total Tokens", "5", "{}"],  # past year 9999 in UTC
        ["0001-01-01T00:00:00+01:00", "Total Tokens", "5", "{}"],  # before year 1 in UTC
        ["12/31/2999, 11:59:59 PM", "Total Tokens", "5", "{}"],
        ["2026-11-24T13:01:00Z", "Total Tokens", "5", DEEP_OBJECT],
        ["2026-11-24T13:02:00Z", "Total Tokens", "7", "{}"],
    ]
    with open(export, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    rejects = tmp_path / "rejects.csv"
    result = run("import", str(export), "--table", "customMetrics", "--rejects", str(rejects))
    assert result.returncode == 2
    assert result.stdout.decode().startswith("Imported 2 rows into customMetrics")
    assert "skipped 4 bad rows" in result.stdout.decode()
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [
        f"tokenboard: warning: {export}:3: timestamp '9999-12-31T23:59:59-05:00' is out of range "
        "(from 1970-01-01 to before 2262-01-01)",
        f"tokenboard: warning: {export}:4: timestamp '0001-01-01T00:00:00+01:00' is out of range "
        "(from 1970-01-01 to before 2262-01-01)",
        f"tokenboard: warning: {export}:5: timestamp '12/31/2999, 11:59:59 PM' is out of range "
        "(from 1970-01-01 to before 2262-01-01)",
        f"tokenboard: warning: {export}:6: customDimensions is nested more than 32 levels deep",
    ]
    with open(rejects, encoding="utf-8", newline="") as handle:
        rejected = list(csv.reader(handle))
    assert [row[0] for row in rejected[1:]] == ["3", "4", "5", "6"]
    assert rejected[4][-1] == DEEP_OBJECT  # the row as it was, to fix and import again
    assert Store(tmp_path / "data").row_count("customMetrics") == 2


def test_a_busy_port_is_exit_1_and_one_line(run) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        result = run("gateway", "--port", str(sock.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in one_line_error(result)
