"""Who refused a call, from whatever the telemetry holds: dependencies, logged bodies, or neither."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenboard import appinsights, refusals
from tokenboard.backends.local import LocalBackend
from tokenboard.hits import CAUSES
from tokenboard.store import Store

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
GATEWAY_429 = refusals.apim_body(429, refusals.token_limit_message(12))
BACKEND_429 = refusals.backend_limit_body(12)
QUOTA_403 = refusals.apim_body(403, refusals.quota_message(600))
SAFETY_403 = refusals.apim_body(403, refusals.CONTENT_SAFETY_MESSAGE)


def request(settings, op: str, code: str, body: str | None = None, sub: str = "team") -> dict:
    logged = {settings.telemetry.response_body_key: body} if body else {}
    dims = appinsights.request_dimensions(settings.telemetry, sub, "ai", logged)
    return appinsights.request_row(
        timestamp=T0.replace(tzinfo=None), result_code=code, operation_id=op, dimensions=dims
    )


def backend_call(op: str, code: str) -> dict:
    return appinsights.dependency_row(timestamp=T0.replace(tzinfo=None), result_code=code, operation_id=op)


def causes(settings, store) -> dict[str, int]:
    backend = LocalBackend(settings, store)
    bound = backend.bind(
        "limit_hit_causes", {"start_time": T0 - timedelta(hours=1), "end_time": T0 + timedelta(hours=1)}
    )
    frame = backend.run_query(bound).frame
    totals = {c: int(frame[c].sum()) for c in (*CAUSES, "assumed_quota")}
    return totals | {"backend_logged": bool(frame["backend_logged"].all())}


def test_backend_calls_decide_before_any_body(settings, store) -> None:
    store.append("requests", [
        request(settings, "a", "429"), request(settings, "b", "429", BACKEND_429),
        request(settings, "c", "403", QUOTA_403), request(settings, "d", "403"),
        request(settings, "e", "403", SAFETY_403), request(settings, "f", "403"),
        request(settings, "g", "200"),
    ])  # fmt: skip
    store.append(
        "dependencies", [backend_call("b", "429"), backend_call("f", "403"), backend_call("g", "200")]
    )
    assert causes(settings, store) == {
        "gateway_429": 1, "backend_429": 1, "quota_403": 2, "other_403": 2, "unattributed": 0,
        "assumed_quota": 1, "backend_logged": True,
    }  # fmt: skip


def test_without_dependencies_the_logged_bodies_still_tell(settings, store) -> None:
    store.append("requests", [
        request(settings, "a", "429", GATEWAY_429), request(settings, "b", "429", BACKEND_429),
        request(settings, "c", "403", QUOTA_403), request(settings, "d", "403", SAFETY_403),
        request(settings, "e", "429"), request(settings, "f", "403"),
    ])  # fmt: skip
    assert causes(settings, store) == {
        "gateway_429": 1, "backend_429": 1, "quota_403": 1, "other_403": 1, "unattributed": 2,
        "assumed_quota": 0, "backend_logged": False,
    }  # fmt: skip


def test_a_request_without_operation_id_is_not_matched_to_one_without(settings, store) -> None:
    store.append("requests", [request(settings, "", "429"), request(settings, "x", "200")])
    store.append("dependencies", [backend_call("", "429"), backend_call("x", "200")])
    assert causes(settings, store)["backend_429"] == 0


def test_a_store_written_before_operation_id_existed_still_reads(settings, store) -> None:
    """Segments from an older version lack operation_Id (and dependencies): they read as null."""
    old = appinsights.table("requests", [request(settings, "z", "429", GATEWAY_429)]).drop_columns(
        ["operation_Id"]
    )
    store.append("requests", [request(settings, "y", "200")])
    path = store.segment_paths("requests")[0]
    pq.write_table(pa.concat_tables([pq.read_table(path).drop_columns(["operation_Id"]), old]), path)
    got = causes(settings, store)
    assert got["gateway_429"] == 1 and not got["backend_logged"]
    backend = LocalBackend(settings, store)
    hits = backend.run_query(
        backend.bind(
            "limit_hits", {"start_time": T0 - timedelta(hours=1), "end_time": T0 + timedelta(hours=1)}
        )
    ).frame
    assert int(hits["requests"].sum()) == 2


@pytest.fixture
def settings(data_dir):
    from tokenboard.config import Settings

    return Settings(data_dir=data_dir, seed_on_start=False)


@pytest.fixture
def store(data_dir) -> Store:
    return Store(data_dir)
