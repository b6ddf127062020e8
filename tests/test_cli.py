"""``python -m tokenboard`` as scripts and cron use it: real subprocesses, real store.

Each run gets a clean environment (the ``run`` fixture: no ``TOKENBOARD_*`` of the developer's,
a temporary working directory and HOME, so no secrets file is read).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import one_line_error as _one_line_error
from costcheck import money_environment, money_settings

from tokenboard import export, kql, reports
from tokenboard.backends.local import LocalBackend
from tokenboard.config import SECRETS_FILES
from tokenboard.settings import load_settings
from tokenboard.store import Store


def _window(demo_end: datetime) -> list[str]:
    start = demo_end - timedelta(days=3)
    return [
        "--param",
        f"start_time={start:%Y-%m-%dT%H:%M:%SZ}",
        "--param",
        f"end_time={demo_end:%Y-%m-%dT%H:%M:%SZ}",
    ]


# --- queries ---------------------------------------------------------------------------------


def test_queries_lists_every_query_file_with_its_parameters(run) -> None:
    result = run("queries")
    assert result.returncode == 0
    text = result.stdout.decode()
    for query in kql.catalog().values():
        assert f"{query.name}\n  {query.title}\n" in text
    assert "    start_time     datetime = ago(24h)  Start of the range (UTC, inclusive)" in text

    listing = json.loads(run("queries", "--format", "json").stdout)
    by_name = {q["name"]: q for q in listing}
    assert set(by_name) == set(kql.catalog())
    bin_size = {"name": "bin_size", "type": "timespan", "default": "auto",
                "doc": "Width of one time bin (auto: from the range)"}  # fmt: skip
    assert bin_size in by_name["tokens_over_time"]["params"]


# --- query -----------------------------------------------------------------------------------


def test_query_csv_is_the_backends_frame_in_utf8_with_iso_utc_times(
    run, seeded_store: Store, seeded_backend: LocalBackend, demo_end: datetime
) -> None:
    window = _window(demo_end)
    result = run("query", "tokens_over_time", *window, "--param", "split_by=subscription",
                 "--format", "csv", "--data-dir", str(seeded_store.data_dir))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    text = result.stdout.decode("utf-8")
    assert text.splitlines()[0] == "timestamp,series,tokens,calls"
    assert "müller-ağ-東京" in text
    first_time = text.splitlines()[1].split(",")[0]
    assert first_time.endswith("Z") and datetime.fromisoformat(first_time).tzinfo is not None

    printed = pd.read_csv(io.BytesIO(result.stdout), keep_default_na=False)
    expected = seeded_backend.run_query(
        seeded_backend.bind(
            "tokens_over_time",
            {"start_time": demo_end - timedelta(days=3), "end_time": demo_end, "split_by": "subscription"},
        )
    ).frame
    assert len(printed) == len(expected) > 0
    assert pd.to_datetime(printed["timestamp"], utc=True).tolist() == expected["timestamp"].tolist()
    assert printed["series"].tolist() == expected["series"].tolist()
    assert printed["tokens"].tolist() == expected["tokens"].tolist()
    assert printed["calls"].tolist() == expected["calls"].tolist()


def test_query_json_prints_records_with_nulls_and_utc_times(
    run, seeded_store: Store, seeded_backend: LocalBackend, demo_end: datetime
) -> None:
    result = run(
        "query",
        "limit_hits",
        *_window(demo_end),
        "--format",
        "json",
        "--data-dir",
        str(seeded_store.data_dir),
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    expected = seeded_backend.run_query(
        seeded_backend.bind("limit_hits", {"start_time": demo_end - timedelta(days=3), "end_time": demo_end})
    ).frame
    assert len(records) == len(expected) > 0
    assert list(records[0]) == list(expected.columns)
    assert [r["requests"] for r in records] == expected["requests"].tolist()
    assert [r["subscription"] for r in records] == expected["subscription"].tolist()
    hits = [r for r in records if r["rate_limited"] + r["quota_exceeded"] > 0]
    quiet = [r for r in records if r["rate_limited"] + r["quota_exceeded"] == 0]
    assert hits and all(r["first_hit"].endswith("Z") for r in hits)
    assert all(r["first_hit"] is None and r["last_hit"] is None for r in quiet)


def test_query_without_params_uses_defaults_and_warns_on_an_empty_store(run) -> None:
    result = run("query", "request_totals")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("requests,rate_limited,quota_exceeded,failed,")
    assert "is empty (fill it: python -m tokenboard seed)" in result.stderr.decode()


def test_unknown_query_is_one_line_and_exit_2(run) -> None:
    result = run("query", "tokens_over_tim")
    assert result.returncode == 2
    assert result.stdout == b""
    assert "unknown query 'tokens_over_tim' (known: " in _one_line_error(result)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            ["--param", "start_time=yesterday"],
            "--param start_time: 'yesterday' is not a valid datetime (use ISO 8601",
        ),
        (["--param", "bin_size=5 minutes"], "--param bin_size: '5 minutes' is not a valid timespan"),
        (["--param", "stat_time=ago(1h)"], "has no parameter 'stat_time' (it takes: start_time, end_time"),
        (["--param", "start_time"], "--param 'start_time' must look like key=value"),
        (["--param", "split_by=api", "--param", "split_by=model"], "--param 'split_by' is given twice"),
        (
            ["--param", "start_time=ago(1h)", "--param", "end_time=ago(2h)"],
            "start_time must be before end_time",
        ),
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    ],
)
def test_bad_parameters_are_one_line_and_exit_2(run, params: list[str], message: str) -> None:
    result = run("query", "tokens_over_time", *params)
    assert result.returncode == 2
    assert message in _one_line_error(result)


def test_a_broken_store_is_one_line_and_exit_1(run, tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    store.append(
        "customMetrics", [{"timestamp": datetime(2026, 11, 24), "name": "Total Tokens", "valueSum": 1.0}]
    )
    (store.table_dir("customMetrics") / "manifest.json").write_text("{cut off", "utf-8")
    result = run("query", "usage_pivot")
    assert result.returncode == 1
    assert "manifest.json is not valid JSON" in _one_line_error(result)


def test_a_bad_setting_names_the_key_and_exits_2(run) -> None:
    result = run("query", "usage_pivot", env={"TOKENBOARD_TOKENS_PER_MINUTE": "lots"})
    assert result.returncode == 2
    assert "Configuration key 'tokens_per_minute' must be a whole number" in _one_line_error(result)


def test_the_project_secrets_file_is_read_and_the_environment_wins(run, tmp_path: Path) -> None:
    secrets = tmp_path / "home" / ".streamlit"
    secrets.mkdir(parents=True)
    (secrets / "secrets.toml").write_text('backend = "azure"\ntokens_per_minute = "many"\n', "utf-8")
    result = run("query", "usage_pivot", env={"TOKENBOARD_BACKEND": "local"})
    assert "'tokens_per_minute' must be a whole number" in _one_line_error(result)
    (secrets / "secrets.toml").write_text("backend = [unclosed\n", "utf-8")
    assert "secrets.toml is not valid TOML" in _one_line_error(run("query", "usage_pivot"))


# --- seed --------------------------------------------------------------------------------


def test_seed_refuses_a_store_with_data_unless_forced(run, tmp_path: Path) -> None:
    data_dir = tmp_path / "other"
    store = Store(data_dir)
    store.append("customMetrics", [{"timestamp": datetime(2026, 11, 24), "name": "Mine", "valueSum": 1.0}])

    refused = run("seed", "--days", "1", "--data-dir", str(data_dir))
    assert refused.returncode == 2
    assert "already holds 1 metric rows and 0 request rows; pass --force" in _one_line_error(refused)
    assert store.row_count("customMetrics") == 1

    forced = run("seed", "--days", "0.25", "--seed", "3", "--end", "2026-11-24T12:00:00Z", "--force",
                 "--data-dir", str(data_dir))  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.decode().startswith("Seeded ")
    backend = LocalBackend(load_settings(environ={}, files=SECRETS_FILES), store)
    frame = backend.run_query(
        backend.bind(
            "usage_pivot",
            {
                "start_time": datetime(2026, 11, 23, tzinfo=UTC),
                "end_time": datetime(2026, 11, 25, tzinfo=UTC),
            },
        )
    ).frame
    assert "Mine" not in set(frame["metric"])
    assert frame["tokens"].sum() > 0
    assert not (tmp_path / "data").exists()  # --data-dir won over TOKENBOARD_DATA_DIR


def test_seed_rejects_a_bad_end(run) -> None:
    result = run("seed", "--end", "soon")
    assert result.returncode == 2
    assert "'soon' is not a valid datetime" in _one_line_error(result)


# --- import ------------------------------------------------------------------------------


def test_import_reports_bad_lines_and_keeps_the_good_rows(run, tmp_path: Path) -> None:
    export = tmp_path / "query_data.csv"
    export.write_bytes(
        "\ufefftimestamp [UTC],name,valueSum,valueCount,customDimensions\n"
        '"11/24/2026, 1:02:03.456 PM",Total Tokens,120,2,"{""Client Subscription"":""müller""}"\n'
        '"11/24/2026, 1:03:00 PM",Total Tokens,many,1,{}\n'
        '"11/24/2026, 1:04:00 PM",Total Tokens,5,1,\n'.encode()
    )
    result = run("import", str(export), "--table", "customMetrics")
    assert result.returncode == 2
    assert (
        result.stdout.decode()
        == f"Imported 2 rows into customMetrics in {tmp_path / 'data'}; skipped 1 bad rows\n"
    )
    assert result.stderr.decode() == f"tokenboard: warning: {export}:3: valueSum 'many' is not a number\n"
    assert Store(tmp_path / "data").row_count("customMetrics") == 2


def test_import_of_a_file_with_the_wrong_columns_is_one_line(run, tmp_path: Path) -> None:
    export = tmp_path / "wrong.csv"
    export.write_text("when,what\n1,2\n", "utf-8")
    result = run("import", str(export), "--table", "requests")
    assert result.returncode == 2
    assert "a requests export needs the column(s) timestamp, resultCode" in _one_line_error(result)
    missing = run("import", str(tmp_path / "nope.csv"), "--table", "requests")
    assert "nope.csv: no such file" in _one_line_error(missing)


# --- report and gateway ------------------------------------------------------------------


def test_report_writes_the_reports_csv(run, seeded_store: Store, demo_end: datetime) -> None:
    listing = run("report")
    assert listing.returncode == 0 and "usage_pivot" in listing.stdout.decode()
    result = run("report", "usage_pivot", *_window(demo_end), "--data-dir", str(seeded_store.data_dir))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.BytesIO(result.stdout))
    assert len(frame) > 0 and "subscription" in frame.columns
    unknown = run("report", "nope")
    assert unknown.returncode == 2
    assert "unknown report 'nope' (known: " in _one_line_error(unknown)
    mistyped = run("report", "usage_pivot", "--param", "start_time=last week")
    assert mistyped.returncode == 2
    assert "--param start_time: 'last week' is not a valid datetime" in _one_line_error(mistyped)


def test_limit_plan_report_takes_a_candidate_and_a_budget(
    run, seeded_store: Store, demo_end: datetime
) -> None:
    args = ("report", "limit_plan", *_window(demo_end), "--data-dir", str(seeded_store.data_dir))
    result = run(*args, "--param", "candidate=4000", "--param", "refusal_budget=0.05")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.BytesIO(result.stdout)).set_index("subscription")
    assert set(frame["candidate_limit"]) == {4000} and set(frame["refusal_budget"]) == {0.05}
    assert frame.loc["contoso-prod", "minutes_over_candidate"] > 0
    assert (frame["suggested_limit"] % 100 == 0).all()
    default = pd.read_csv(io.BytesIO(run(*args).stdout))
    assert set(default["candidate_limit"]) == {10_000}  # the configured tokens_per_minute
    bad = run(*args, "--param", "candidate=lots")
    assert bad.returncode == 2 and "--param candidate: 'lots' is not a valid long" in _one_line_error(bad)


def test_report_prints_the_costs_the_page_shows(
    run, seeded_store: Store, demo_settings, demo_end: datetime
) -> None:
    """Cron gets the same cost columns, with prices from the environment, as the Reports page."""
    window = _window(demo_end)
    result = run(
        "report", "monthly_usage", *window, "--data-dir", str(seeded_store.data_dir), env=money_environment()
    )
    assert result.returncode == 0, result.stderr
    params = {"start_time": demo_end - timedelta(days=3), "end_time": demo_end}
    expected = reports.build_report(
        "monthly_usage", LocalBackend(money_settings(demo_settings), seeded_store), params
    )
    assert result.stdout == export.to_csv(expected)
    frame = pd.read_csv(io.BytesIO(result.stdout))
    assert {"cost", "cost_input", "cost_cached_input", "cost_output", "unpriced_tokens"} <= set(frame.columns)
    assert (frame["currency"] == "EUR").all() and frame["cost"].sum() > 0


def test_gateway_arguments_go_to_the_gateways_own_cli(run) -> None:
    result = run("gateway", "--list-subscriptions")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines and all(len(line.split("\t")) == 2 for line in lines)


def test_help_lists_every_command(run) -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("queries", "query", "seed", "import", "report", "gateway"):
        assert command in result.stdout.decode()
    assert "the following arguments are required: COMMAND" in _one_line_error(run())


# --- output formats (in process) ---------------------------------------------------------------


def test_csv_and_json_output_of_every_column_type() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-11-24T13:02:03.000001Z", None], utc=True),
            "minute": pd.to_datetime(["2026-11-24T13:02:00Z", "2026-11-24T13:03:00Z"], utc=True),
            "name": ["müller-ağ-東京 😀", 'say "hi", ok'],
            "count": pd.array([3, None], dtype="Int64"),
            "share": [0.25, float("nan")],
            "ok": [True, False],
            "tags": pd.Series([["a", "b"], {"k": "v"}], dtype=object),
            "span": pd.to_timedelta(["1 days 00:00:01.5", "-00:00:30"]),
        }
    )
    csv_text = export.to_csv(frame).decode("utf-8")
    assert csv_text.splitlines() == [
        "at,minute,name,count,share,ok,tags,span",
        '2026-11-24T13:02:03.000Z,2026-11-24T13:02:00Z,müller-ağ-東京 😀,3,0.25,true,"[""a"",""b""]",'
        "1.00:00:01.5000000",
        ',2026-11-24T13:03:00Z,"say ""hi"", ok",,,false,"{""k"":""v""}",-00:00:30',
    ]
    records = json.loads(export.to_json(frame))
    assert records == [
        {"at": "2026-11-24T13:02:03.000Z", "minute": "2026-11-24T13:02:00Z", "name": "müller-ağ-東京 😀",
         "count": 3, "share": 0.25, "ok": True, "tags": ["a", "b"], "span": "1.00:00:01.5000000"},
        {"at": None, "minute": "2026-11-24T13:03:00Z", "name": 'say "hi", ok', "count": None, "share": None,
         "ok": False, "tags": {"k": "v"}, "span": "-00:00:30"},
    ]  # fmt: skip
    assert json.loads(export.to_json(frame.iloc[0:0])) == []
