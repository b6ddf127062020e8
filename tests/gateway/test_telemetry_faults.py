"""Telemetry writes against a failing store: one bad segment must not multiply the rows, and a
flush retried after an error cannot write its batch twice."""

from __future__ import annotations

import collections
import logging
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from gateway_helpers import free_port, key_for, read_table, start_gateway

from tokenboard import store as store_module
from tokenboard.config import Settings
from tokenboard.gateway.telemetry import Telemetry
from tokenboard.store import Store

CALLS = 55  # the figure: 55 calls once became 1,152 rows


def test_one_unreadable_segment_does_not_multiply_the_telemetry(data_dir: Path) -> None:
    """47 small request segments, one of them damaged: the gateway's first flush makes 48 and
    starts a merge that meets the damaged file."""
    store = Store(data_dir)
    start = datetime(2026, 11, 24, 12)
    for i in range(store_module.COMPACT_AT - 1):
        old = {"timestamp": start + timedelta(seconds=i), "id": f"old-{i}", "customDimensions": {}}
        store.append("requests", [old])
    bad = store.segment_paths("requests")[5]
    bad.write_bytes(b"PAR1 this segment is damaged")
    key, port = key_for(data_dir), free_port()
    process = start_gateway(data_dir, port, flush_ms=100)
    sent = []
    with httpx.Client(timeout=10) as client:
        for _ in range(CALLS):
            body = {"messages": [{"role": "user", "content": "hi"}]}
            answer = client.post(f"http://127.0.0.1:{port}/ai/chat/completions", json=body,
                                 headers={"Ocp-Apim-Subscription-Key": key})  # fmt: skip
            assert answer.status_code == 200
            sent.append(answer.headers["apim-request-id"])
    time.sleep(1.5)  # fifteen flush intervals without traffic: the old fault rewrote rows on each
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    stderr = process.stderr.read().decode()

    reopened = Store(data_dir)
    requests = read_table(reopened, "requests")
    ids = collections.Counter(requests["id"])
    print(f"{CALLS} calls with one unreadable segment: {sum(ids[i] for i in sent)} request rows")
    assert max(ids.values()) == 1
    assert {i for i in ids if not i.startswith("old-")} == set(sent)
    assert len(requests) == CALLS + store_module.COMPACT_AT - 2  # all but the damaged file's one row
    metrics = read_table(reopened, "customMetrics")
    assert metrics.loc[metrics["name"] == "Total Tokens", "valueCount"].sum() == CALLS
    set_aside = [line for line in stderr.splitlines() if "Set aside" in line]
    assert len(set_aside) == 1 and bad.name in set_aside[0] and "1 row)" in set_aside[0]
    assert "ERROR" not in stderr and "Traceback" not in stderr
    [notice] = reopened.notices()
    assert f"quarantine/{bad.name} could not be read" in notice


class FlakyStore(Store):
    """A store whose appends fail the first ``failures`` times, after (or before) committing."""

    def __init__(self, data_dir: Path, failures: int, after_commit: bool) -> None:
        super().__init__(data_dir)
        self.failures, self.after_commit = failures, after_commit

    def append(self, table, data, batch_id=None):
        if self.failures and not self.after_commit:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        segment = super().append(table, data, batch_id=batch_id)
        if self.failures:
            self.failures -= 1
            raise OSError(5, "Input/output error")  # did the write land? the writer cannot know
        return segment


def test_a_flush_retried_after_an_error_writes_each_row_once(data_dir: Path, settings: Settings) -> None:
    for after_commit in (True, False):
        store = FlakyStore(data_dir / str(after_commit), failures=3, after_commit=after_commit)
        telemetry = Telemetry(store, settings, flush_seconds=60)
        for n in range(4):
            for i in range(10):
                telemetry.record_request(at=1_800_000_000.0 + n, request_id=f"{n}-{i}", method="POST",
                                         path="/ai/chat/completions", status=200, duration_ms=1.0,
                                         subscription="sub", api="ai")  # fmt: skip
                telemetry.record_tokens(1_800_000_000.0 + n, "sub", "ai", "m", {"total_tokens": 3})
            telemetry.flush()
        telemetry.flush()
        requests = read_table(store, "requests")
        assert sorted(requests["id"]) == sorted(f"{n}-{i}" for n in range(4) for i in range(10))
        metrics = read_table(store, "customMetrics")
        assert metrics.loc[metrics["name"] == "Total Tokens", "valueSum"].sum() == 4 * 10 * 3


def test_stopping_with_rows_the_store_refused_says_how_many(
    data_dir: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = Telemetry(FlakyStore(data_dir, failures=99, after_commit=False), settings, flush_seconds=60)
    telemetry.record_tokens(1_800_000_000.0, "sub", "ai", "m", {"total_tokens": 3, "prompt_tokens": 1})
    with caplog.at_level(logging.ERROR, logger="tokenboard"):
        telemetry.flush()
        telemetry.flush()
        telemetry.stop()
    messages = [r.message for r in caplog.records]
    assert len([m for m in messages if "Writing gateway customMetrics" in m]) == 1  # once per cause
    assert any("Stopping with 3 telemetry rows that could not be written" in m for m in messages)


class BackendCallsFailFirst(Store):
    """A store that cannot take ``dependencies`` rows the first ``failures`` times."""

    def __init__(self, data_dir: Path, failures: int) -> None:
        super().__init__(data_dir)
        self.failures = failures

    def append(self, table, data, batch_id=None):
        if table == "dependencies" and self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().append(table, data, batch_id=batch_id)


def test_a_request_row_never_lands_before_its_backend_call(data_dir: Path, settings: Settings) -> None:
    """Otherwise a reader would count the deployment's 429 as the gateway's for a while."""
    store = BackendCallsFailFirst(data_dir, failures=2)
    telemetry = Telemetry(store, settings, flush_seconds=60)
    telemetry.record_dependency(at=1_800_000_000.0, operation_id="op-1", target="aoai", url="https://aoai/x",
                                status=429, duration_ms=5.0)  # fmt: skip
    telemetry.record_request(at=1_800_000_000.0, request_id="op-1", method="POST", path="/ai/x",
                             status=429, duration_ms=6.0, subscription="sub", api="ai")  # fmt: skip
    for _ in range(2):
        assert telemetry.flush() == (0, 0)
        assert store.row_count("requests") == 0 == store.row_count("dependencies")
    assert telemetry.flush() == (0, 1)
    assert list(read_table(store, "dependencies")["operation_Id"]) == ["op-1"]
    assert list(read_table(store, "requests")["operation_Id"]) == ["op-1"]
