"""Helpers for the gateway tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq

from tokenboard.appinsights import SCHEMAS
from tokenboard.gateway.server import bind
from tokenboard.store import Store

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
