"""Importing CSV exports from the Azure portal's Logs blade into the local store."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tokenboard import importer
from tokenboard.backends.local import LocalBackend
from tokenboard.store import Store

WINDOW = {"start_time": datetime(2026, 11, 1, tzinfo=UTC), "end_time": datetime(2026, 12, 1, tzinfo=UTC)}
METRIC_HEADER = [
    "timestamp [UTC]", "name", "value", "valueCount", "valueSum", "valueMin", "valueMax", "valueStdDev",
    "customDimensions", "operation_Name", "itemType", "itemCount", "cloud_RoleName",
]  # fmt: skip


def _dims(**values: str) -> str:
    return json.dumps({k.replace("_", " "): v for k, v in values.items()}, ensure_ascii=False)


def _metric(ts: str, name: str, total: float, count: int, dims: str) -> list[object]:
    return [ts, name, total, count, total, 1, total, 0, dims, "POST /chat", "customMetric", 1, "apim"]


def _write_csv(path: Path, header: list[str], rows: list[list[object]], bom: bool = True) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


@pytest.fixture
def portal_metrics(tmp_path: Path) -> Path:
    """A customMetrics export as the portal writes it: BOM, [UTC] header, US times, JSON text."""
    rows = [
        _metric("11/24/2026, 1:02:03.456 PM", "Total Tokens", 120, 2,
                _dims(Client_Subscription="müller-ağ-東京 😀", API_ID="chat", Region="West Europe")),
        _metric("11/24/2026, 12:00:00.000 AM", "Total Tokens", 80, 1,
                _dims(Client_Subscription="", API_ID="chat")),
        # No subscription dimension at all:
        _metric("11/24/2026, 12:30:00.000 PM", "Prompt Tokens", 50, 1, _dims(API_ID="chat")),
        _metric("11/25/2026, 9:15:00 AM", "Total Tokens", 30, 3, ""),  # no dimensions at all
        _metric("11/25/2026, 9:16:00 AM", "Prompt Cached Tokens", 12, 1,
                _dims(Client_Subscription='say "hi", \\ne', API_ID="chat\nline")),
    ]  # fmt: skip
    return _write_csv(tmp_path / "query_data.csv", METRIC_HEADER, rows)


def _pivot(backend: LocalBackend) -> dict[tuple[str, str, str], tuple[float, int]]:
    frame = backend.run_query(backend.bind("usage_pivot", WINDOW)).frame
    return {(r.subscription, r.api, r.metric): (r.tokens, r.calls) for r in frame.itertuples()}


# --- the portal format ------------------------------------------------------------------------


def test_a_portal_export_imports_every_row_with_odd_dimensions_intact(
    portal_metrics: Path, store: Store, local_backend: LocalBackend
) -> None:
    result = importer.import_csv(portal_metrics, "customMetrics", store)
    assert result.rows == 5 and result.bad_rows == []
    assert result.ignored_columns == ["itemType"]
    assert _pivot(local_backend) == {
        ("müller-ağ-東京 😀", "chat", "Total Tokens"): (120.0, 2),
        ("", "chat", "Total Tokens"): (80.0, 1),
        ("", "chat", "Prompt Tokens"): (50.0, 1),
        ("", "", "Total Tokens"): (30.0, 3),
        ('say "hi", \\ne', "chat\nline", "Prompt Cached Tokens"): (12.0, 1),
    }


def test_portal_times_become_utc_with_milliseconds(portal_metrics: Path, store: Store) -> None:
    importer.import_csv(portal_metrics, "customMetrics", store)
    frame = pd.concat(pd.read_parquet(p) for p in store.segment_paths("customMetrics"))
    assert sorted(frame["timestamp"].dt.to_pydatetime()) == [
        datetime(2026, 11, 24, 0, 0),  # 12:00 AM is midnight
        datetime(2026, 11, 24, 12, 30),  # 12:30 PM is half past noon
        datetime(2026, 11, 24, 13, 2, 3, 456000),
        datetime(2026, 11, 25, 9, 15),
        datetime(2026, 11, 25, 9, 16),
    ]


def test_imported_totals_match_pandas_over_the_same_file(
    portal_metrics: Path, store: Store, local_backend: LocalBackend
) -> None:
    importer.import_csv(portal_metrics, "customMetrics", store)
    source = pd.read_csv(portal_metrics, encoding="utf-8-sig")
    expected = source.groupby("name")["valueSum"].sum().to_dict()
    frame = local_backend.run_query(local_backend.bind("usage_pivot", WINDOW)).frame
    assert frame.groupby("metric")["tokens"].sum().to_dict() == expected
    assert frame["calls"].sum() == source["valueCount"].sum()


def test_an_import_is_one_segment(portal_metrics: Path, store: Store) -> None:
    importer.import_csv(portal_metrics, "customMetrics", store)
    assert len(store.segments("customMetrics")) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11/24/2026, 1:02:03.456 PM", datetime(2026, 11, 24, 13, 2, 3, 456000)),
        ("1/2/2026, 12:00:00.000 AM", datetime(2026, 1, 2, 0, 0)),
        ("1/2/2026, 12:59:59 PM", datetime(2026, 1, 2, 12, 59, 59)),
        ("11/24/2026 1:02 pm", datetime(2026, 11, 24, 13, 2)),
        ("11/24/2026, 13:02:03", datetime(2026, 11, 24, 13, 2, 3)),  # a 24-hour clock
        ("2026-11-24T13:02:03.4567891Z", datetime(2026, 11, 24, 13, 2, 3, 456789)),  # Kusto's 7 digits
        ("2026-11-24T14:02:03+01:00", datetime(2026, 11, 24, 13, 2, 3)),
        ("2026-11-24 13:02:03", datetime(2026, 11, 24, 13, 2, 3)),
    ],
)
def test_timestamps_in_portal_or_iso_format(text: str, expected: datetime) -> None:
    assert importer.parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["24/11/2026, 1:02:03 PM", "11/24/2026, 13:02:03 PM", "yesterday", "11/24/26, 1:02 PM"]
)
def test_impossible_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        importer.parse_timestamp(text)


# --- bad rows -------------------------------------------------------------------------------


def test_bad_rows_are_reported_by_line_and_every_valid_row_still_lands(
    tmp_path: Path, store: Store, local_backend: LocalBackend
) -> None:
    ok = _dims(Client_Subscription="sub-a", API_ID="chat")
    rows = [
        _metric("11/24/2026, 1:00:00 PM", "Total Tokens", 10, 1, ok),  # line 2
        # Lines 3-5: pretty-printed JSON puts line breaks inside one quoted field.
        _metric(
            "11/24/2026, 1:01:00 PM",
            "Total Tokens",
            20,
            1,
            json.dumps({"Client Subscription": "x"}, indent=1),
        ),
        _metric("13/45/2026, 1:02:00 PM", "Total Tokens", 30, 1, ok),  # line 6: bad time
        _metric("11/24/2026, 1:03:00 PM", "Total Tokens", "lots", 1, ok),  # line 7: bad number
        _metric("11/24/2026, 1:04:00 PM", "Total Tokens", 40, 1, "{not json"),  # line 8
        _metric("11/24/2026, 1:05:00 PM", "Total Tokens", 50, 1, '["a list"]'),  # line 9
        _metric("11/24/2026, 1:06:00 PM", "", 60, 1, ok),  # line 10: no metric name
        _metric("11/24/2026, 1:07:00 PM", "Total Tokens", 70, 1, ok)[:5],  # line 11: short row
        _metric("11/24/2026, 1:08:00 PM", "Total Tokens", 80, -2, ok),  # line 12: negative count
        _metric("", "Total Tokens", 90, 1, ok),  # line 13: no time
        _metric("11/24/2026, 1:10:00 PM", "Total Tokens", "inf", 1, ok),  # line 14
        _metric("11/24/2026, 1:11:00 PM", "Total Tokens", 100, 1, ok),  # line 15
    ]
    path = _write_csv(tmp_path / "export.csv", METRIC_HEADER, rows)
    result = importer.import_csv(path, "customMetrics", store, rejects=tmp_path / "rejects.csv")
    problems = {bad.line: bad.message for bad in result.bad_rows}
    assert list(problems) == [6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert "timestamp '13/45/2026, 1:02:00 PM' is not a time" in problems[6]
    assert "valueSum 'lots' is not a number" in problems[7]
    assert "customDimensions is not valid JSON" in problems[8]
    assert "must be a JSON object" in problems[9]
    assert problems[10] == "name is empty"
    assert problems[11] == "has 5 fields, the header has 13"
    assert "valueCount '-2' is not a whole number" in problems[12]
    assert problems[13] == "timestamp is empty"
    assert "not a finite number" in problems[14]
    assert result.rows == 3
    assert store.row_count("customMetrics") == 3
    assert sorted(_pivot(local_backend).values()) == [(20.0, 1), (110.0, 2)]

    with open(tmp_path / "rejects.csv", encoding="utf-8", newline="") as handle:
        rejects = list(csv.reader(handle))
    assert rejects[0] == ["line", "error", *METRIC_HEADER]
    assert [r[0] for r in rejects[1:]] == ["6", "7", "8", "9", "10", "11", "12", "13", "14"]
    assert rejects[2][2:] == [str(v) for v in rows[3]]  # the bad row exactly as it was


def test_a_fixed_rejects_file_imports_again(tmp_path: Path, store: Store) -> None:
    rows = [_metric("13/24/2026, 1:00:00 PM", "Total Tokens", 10, 1, "{}")]
    path = _write_csv(tmp_path / "export.csv", METRIC_HEADER, rows)
    importer.import_csv(path, "customMetrics", store, rejects=tmp_path / "rejects.csv")
    fixed = (tmp_path / "rejects.csv").read_text("utf-8").replace("13/24/2026", "11/24/2026")
    (tmp_path / "fixed.csv").write_text(fixed, "utf-8")
    result = importer.import_csv(tmp_path / "fixed.csv", "customMetrics", store)
    assert result.rows == 1 and not result.bad_rows
    assert result.ignored_columns == ["line", "error", "itemType"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"name,valueSum\nTotal Tokens,1\n", r"needs the column\(s\) timestamp"),
        (b"timestamp,name\n2026-11-24T00:00:00Z,Total Tokens\n", r"needs the column\(s\) valueSum"),
        (b"timestamp [Local Time],name,valueSum\n", "is not in UTC"),
        (b"timestamp,TimeGenerated,name,valueSum\n", "both hold timestamp"),
        ("timestamp,name,valueSum\n2026-11-24,Tötal,1\n".encode("latin-1"), "is not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_imported_writes_nothing(
    tmp_path: Path, store: Store, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(importer.ImportFileError, match=message):
        importer.import_csv(path, "customMetrics", store)
    assert store.is_empty()


def test_a_missing_file_is_named(tmp_path: Path, store: Store) -> None:
    with pytest.raises(importer.ImportFileError, match=r"no-such\.csv: no such file"):
        importer.import_csv(tmp_path / "no-such.csv", "customMetrics", store)


def test_a_dry_run_checks_without_writing(portal_metrics: Path, store: Store) -> None:
    result = importer.import_csv(portal_metrics, "customMetrics", None)
    assert result.rows == 5
    assert store.is_empty()


# --- requests and workspace-based exports ------------------------------------------------------


def test_a_requests_export_counts_limit_hits_with_item_count(
    tmp_path: Path, store: Store, local_backend: LocalBackend
) -> None:
    header = ["timestamp [UTC]", "id", "name", "url", "success", "resultCode", "duration", "customDimensions",
              "itemCount", "operation_Name", "performanceBucket"]  # fmt: skip
    dims = _dims(Subscription_Name="contoso-prod", API_Name="chat")
    rows = [
        [
            "11/24/2026, 1:00:00 PM",
            "a1",
            "POST /chat",
            "https://apim/chat",
            "True",
            "200",
            812.5,
            dims,
            5,
            "",
            "<1s",
        ],
        [
            "11/24/2026, 1:00:01 PM",
            "a2",
            "POST /chat",
            "https://apim/chat",
            "False",
            "429",
            3.1,
            dims,
            1,
            "",
            "<1s",
        ],
        [
            "11/24/2026, 1:00:02 PM",
            "a3",
            "POST /chat",
            "https://apim/chat",
            "",
            "429",
            2.9,
            dims,
            "",
            "",
            "<1s",
        ],
        ["11/24/2026, 1:00:03 PM", "a4", "POST /chat", "https://apim/chat", "", "403", 2.0, "", 1, "", "<1s"],
    ]
    result = importer.import_csv(_write_csv(tmp_path / "requests.csv", header, rows), "requests", store)
    assert result.rows == 4 and not result.bad_rows
    hits = local_backend.run_query(local_backend.bind("limit_hits", WINDOW)).frame.set_index("subscription")
    assert hits.loc["contoso-prod", "requests"] == 7
    assert hits.loc["contoso-prod", "rate_limited"] == 2
    assert hits.loc["", "quota_exceeded"] == 1
    stored = pd.read_parquet(store.segment_paths("requests")[0])
    assert stored["success"].tolist() == [True, False, False, False]  # empty: from the status code


def test_a_workspace_based_export_maps_its_column_names(
    tmp_path: Path, store: Store, local_backend: LocalBackend
) -> None:
    header = [
        "TimeGenerated [UTC]",
        "Name",
        "Sum",
        "ItemCount",
        "Min",
        "Max",
        "Properties",
        "AppRoleName",
        "_ResourceId",
    ]
    dims = _dims(Client_Subscription="fabrikam", API_ID="responses")
    rows = [["2026-11-24T13:00:00Z", "Total Tokens", 500, 4, 100, 150, dims, "apim", "/subscriptions/x"]]
    result = importer.import_csv(
        _write_csv(tmp_path / "appmetrics.csv", header, rows, bom=False), "customMetrics", store
    )
    assert result.rows == 1 and result.ignored_columns == ["_ResourceId"]
    assert _pivot(local_backend) == {("fabrikam", "responses", "Total Tokens"): (500.0, 4)}


def test_value_alone_stands_in_for_value_sum(
    tmp_path: Path, store: Store, local_backend: LocalBackend
) -> None:
    rows = [["2026-11-24T13:00:00Z", "Total Tokens", 42, _dims(Client_Subscription="s", API_ID="a")]]
    path = _write_csv(tmp_path / "m.csv", ["timestamp", "name", "value", "customDimensions"], rows)
    importer.import_csv(path, "customMetrics", store)
    assert _pivot(local_backend) == {("s", "a", "Total Tokens"): (42.0, 1)}


@pytest.mark.parametrize("workspace", [False, True])
def test_requests_and_dependencies_exports_attribute_the_429s(
    tmp_path: Path, store: Store, local_backend: LocalBackend, workspace: bool
) -> None:
    """One 429 refused by the gateway (no backend call), one by the deployment (its call answered 429)."""
    dims = _dims(Subscription_Name="contoso-prod", API_Name="chat")
    if workspace:
        request_header = ["TimeGenerated [UTC]", "Name", "ResultCode", "Success", "DurationMs", "Properties",
                          "ItemCount", "OperationId"]  # fmt: skip
        dependency_header = ["TimeGenerated [UTC]", "Target", "DependencyType", "Name", "ResultCode",
                             "Success", "DurationMs", "OperationId", "ItemCount", "_ResourceId"]  # fmt: skip
    else:
        request_header = ["timestamp [UTC]", "name", "resultCode", "success", "duration", "customDimensions",
                          "itemCount", "operation_Id"]  # fmt: skip
        dependency_header = ["timestamp [UTC]", "target", "type", "name", "resultCode", "success", "duration",
                             "operation_Id", "itemCount", "_ResourceId"]  # fmt: skip
    requests = [
        [
            "11/24/2026, 1:00:00 PM",
            "POST /chat",
            "429",
            "False",
            3.0,
            dims,
            1,
            "0af7651916cd43dd8448eb211c80319c",
        ],
        [
            "11/24/2026, 1:00:01 PM",
            "POST /chat",
            "429",
            "False",
            90.0,
            dims,
            1,
            "b7ad6b7169203331b7ad6b7169203331",
        ],
        [
            "11/24/2026, 1:00:02 PM",
            "POST /chat",
            "200",
            "True",
            800.0,
            dims,
            1,
            "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
        ],
    ]
    call = "POST /openai/deployments/gpt-4o/chat/completions"
    dependencies = [
        ["11/24/2026, 1:00:01 PM", "aoai.openai.azure.com", "HTTP", call, "429", "False", 80.0,
         "b7ad6b7169203331b7ad6b7169203331", 1, "/subscriptions/x"],
        ["11/24/2026, 1:00:02 PM", "aoai.openai.azure.com", "HTTP", call, "200", "True", 780.0,
         "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1", 1, "/subscriptions/x"],
        ["11/24/2026, 1:00:03 PM", "aoai", "HTTP", "POST", "200", "True", 1.0, "", 1, "/x"],  # no op id
    ]  # fmt: skip
    assert (
        importer.import_csv(_write_csv(tmp_path / "r.csv", request_header, requests), "requests", store).rows
        == 3
    )
    result = importer.import_csv(
        _write_csv(tmp_path / "d.csv", dependency_header, dependencies), "dependencies", store
    )
    assert result.rows == 2 and result.ignored_columns == ["_ResourceId"]
    assert [b.message for b in result.bad_rows] == ["operation_Id is empty"]
    causes = local_backend.run_query(local_backend.bind("limit_hit_causes", WINDOW)).frame
    assert (causes["gateway_429"].sum(), causes["backend_429"].sum()) == (1, 1)
    stored = pd.read_parquet(store.segment_paths("dependencies")[0])
    assert stored["success"].tolist() == [False, True] and stored["type"].tolist() == ["HTTP", "HTTP"]
