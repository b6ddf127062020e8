"""The gateway stopped under load: SIGTERM keeps every answered call, SIGKILL all but the last
flush interval; neither leaves a row twice, a corrupt segment, or the key in any output."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
from gateway_helpers import free_port, key_for, read_table, start_gateway

from tokenboard.appinsights import TABLES
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store

FLUSH_MS = 100
# A call answered this long before the kill has been through a flush: one interval of waiting,
# plus the write itself on a busy 2-core machine.
FLUSHED_WITHIN = 1.0


class Traffic:
    """Clients calling the gateway until it goes away; when each 200 arrived, by request id."""

    def __init__(self, port: int, key: str, clients: int = 4) -> None:
        self.url = f"http://127.0.0.1:{port}/ai/chat/completions"
        self.key = key
        self.answered: dict[str, float] = {}
        self.statuses: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._call) for _ in range(clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _call(self) -> None:
        body = {"messages": [{"role": "user", "content": "keep going"}]}
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.url, json=body, headers={"Ocp-Apim-Subscription-Key": self.key})
                except httpx.HTTPError:
                    return
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    self.answered[r.headers["apim-request-id"]] = time.monotonic()


def named_files(directory: Path) -> set[str]:
    """The files of a table folder its manifest names, live or retired."""
    manifest = json.loads((directory / "manifest.json").read_text())
    return {s["file"] for s in manifest["segments"]} | {r["file"] for r in manifest["retired"]}


def signal_under_load(
    data_dir: Path, key: str, sig: signal.Signals
) -> tuple[subprocess.Popen, Traffic, float]:
    """A gateway process called by 4 clients until 200 requests are stored, then sent ``sig``."""
    port = free_port()
    process = start_gateway(data_dir, port, FLUSH_MS)
    with Traffic(port, key) as traffic:
        deadline = time.monotonic() + 20
        while Store(data_dir).row_count("requests") < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(sig)
        signalled_at = time.monotonic()
        process.wait(30)
    return process, traffic, signalled_at


def test_sigterm_under_load_keeps_every_answered_call_once(data_dir: Path) -> None:
    process, traffic, _ = signal_under_load(data_dir, key_for(data_dir), signal.SIGTERM)
    assert process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    requests = read_table(Store(data_dir), "requests")
    ids = collections.Counter(requests["id"])
    print(f"SIGTERM: {len(traffic.answered)} calls answered 200, {len(requests)} request rows")
    assert max(ids.values()) == 1, "a request row was written twice"
    assert set(traffic.answered) <= set(ids), f"{len(set(traffic.answered) - set(ids))} answered calls lost"
    metrics = read_table(Store(data_dir), "customMetrics")
    calls = metrics.loc[metrics["name"] == "Total Tokens", "valueCount"].sum()
    assert calls == (requests["resultCode"] == "200").sum()  # every admitted call counted once in both


def test_sigkill_mid_traffic_loses_only_the_last_flush_interval(data_dir: Path) -> None:
    key = key_for(data_dir)
    process, traffic, killed_at = signal_under_load(data_dir, key, signal.SIGKILL)
    stderr = process.stderr.read().decode()

    left = {}
    for table in TABLES:  # as the kill left it, before any store opens it
        directory = data_dir / table
        for entry in json.loads((directory / "manifest.json").read_text())["segments"]:
            assert pq.read_table(directory / entry["file"]).num_rows > 0  # every listed segment opens whole
        left[table] = sorted(set(os.listdir(directory)) - {"manifest.json", ".lock"} - named_files(directory))
    store = Store(data_dir)  # the next process to open the store tidies what the kill left
    requests = read_table(store, "requests")
    ids = collections.Counter(requests["id"])
    missing = {i: killed_at - t for i, t in traffic.answered.items() if i not in ids}
    oldest = max(missing.values(), default=0) * 1000
    print(
        f"SIGKILL: {len(traffic.answered)} calls answered 200, {len(requests)} request rows, "
        f"{len(missing)} missing, answered at most {oldest:.0f} ms before the kill; left behind: {left}"
    )
    assert len(requests) >= 200 and max(ids.values()) == 1
    assert all(age < FLUSHED_WITHIN for age in missing.values()), sorted(missing.values())[-5:]
    for table in TABLES:
        assert named_files(store.table_dir(table)) == set(os.listdir(store.table_dir(table))) - {
            "manifest.json",
            ".lock",
        }
    backend = LocalBackend(Settings(data_dir=data_dir, seed_on_start=False), store)
    totals = backend.run_query(
        backend.bind(
            "request_totals", {"start_time": "2000-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
        )
    ).frame
    assert int(totals["requests"].iloc[0]) == len(requests)
    assert key not in stderr and key not in process.stdout.read().decode()
