"""Helpers for the gateway tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq

from tokenboard.appinsights import SCHEMAS
from tokenboard.gateway.server import bind
from tokenboard.store import Store

ROOT = Path(__file__).resolve().parents[2]
START = 1_800_000_030.0  # 2027-01-15 08:00:30 UTC: mid-minute, so minute bins are easy to reason about


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def read_table(store: Store, table: str) -> pd.DataFrame:
    """Rows of a store table read straight from its Parquet segments (independent of the queries)."""
    paths = store.segment_paths(table)
    if not paths:
        return pd.DataFrame(columns=[*SCHEMAS[table].names, "dims"])
    frame = pd.concat([pq.read_table(p).to_pandas() for p in paths], ignore_index=True)
    frame["dims"] = frame["customDimensions"].map(json.loads)
    return frame


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    return port


def start_gateway(data_dir: Path, port: int, flush_ms: int = 100) -> subprocess.Popen:
    """``python -m tokenboard.gateway`` in its own process, answering its health probe."""
    env = os.environ | {"TOKENBOARD_GATEWAY_FLUSH_MS": str(flush_ms), "PYTHONPATH": str(ROOT)}
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
    """The first demo subscription's key for a data directory."""
    out = subprocess.run(
        [sys.executable, "-m", "tokenboard.gateway", "--data-dir", str(data_dir), "--list-subscriptions"],
        capture_output=True, text=True, check=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return out.stdout.splitlines()[0].split("\t")[1]


def open_slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that never finish a request: half idle, half stuck in the middle of a head."""
    clients = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:
            sock.sendall(b"POST /ai/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
        clients.append(sock)
    return clients
