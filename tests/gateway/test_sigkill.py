"""SIGKILL mid-traffic: the store still reads, no segment is corrupt, the key is in no output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
from gateway_helpers import free_port

from tokenboard.appinsights import TABLES
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store

ROOT = Path(__file__).resolve().parents[2]


def start_gateway(data_dir: Path, port: int) -> subprocess.Popen:
    env = os.environ | {"TOKENBOARD_GATEWAY_FLUSH_MS": "100", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tokenboard.gateway", "--port", str(port), "--data-dir", str(data_dir),
               "--tokens-per-minute", "100000000"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status-0123456789abcdef").status_code == 200:
                return process
        except httpx.ConnectError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the gateway subprocess did not start: " + process.stderr.read().decode())


def key_for(data_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tokenboard.gateway", "--data-dir", str(data_dir), "--list-subscriptions"],
        capture_output=True, text=True, check=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return out.stdout.splitlines()[0].split("\t")[1]


def test_sigkill_mid_traffic_leaves_a_readable_store(data_dir: Path) -> None:
    key = key_for(data_dir)
    port = free_port()
    process = start_gateway(data_dir, port)
    sent = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    body = {"messages": [{"role": "user", "content": "keep going"}]}
                    r = client.post(f"http://127.0.0.1:{port}/ai/chat/completions", json=body,
                                    headers={"Ocp-Apim-Subscription-Key": key})  # fmt: skip
                    sent.append(r.status_code)
                except httpx.HTTPError:
                    return

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while Store(data_dir).row_count("requests") < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    stderr = process.stderr.read().decode()

    store = Store(data_dir)
    for table in TABLES:
        for path in store.segment_paths(table):
            assert pq.read_table(path).num_rows > 0  # every listed segment opens whole
    written = store.row_count("requests")
    assert 200 <= written <= len(sent) + 4  # only the last unflushed interval may be missing
    backend = LocalBackend(Settings(data_dir=data_dir, seed_on_start=False), store)
    totals = backend.run_query(
        backend.bind(
            "request_totals", {"start_time": "2000-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
        )
    ).frame
    assert int(totals["requests"].iloc[0]) == written
    assert key not in stderr and key not in process.stdout.read().decode()
