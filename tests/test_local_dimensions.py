"""The local backend's once-per-distinct-value dimension columns equal the per-row prelude."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tokenboard import kql
from tokenboard.backends import local
from tokenboard.backends.local import LocalBackend
from tokenboard.store import Store

END = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)

# customDimensions as APIM might write them, and as a portal export or a bug might.
ODD_DIMENSIONS = [
    {"Client Subscription": "contoso", "API ID": "chat", "Model": "gpt-4o-mini", "Region": "West Europe"},
    {"Client Subscription": "müller-ağ-東京", "API ID": "chat", "Model": "gpt-4o-mini"},
    {"Client Subscription": 'o\'brien "quoted"', "API ID": "responses"},
    {"Client Subscription": "", "API ID": "", "Model": ""},
    {"API ID": "chat"},
    {},
    None,
    {"Client Subscription": 42, "API ID": True, "Model": {"nested": [1, 2]}},
    {"Client Subscription": "tab\there\nnewline", "API ID": "back\\slash"},
]


def _rows(minutes: int = 90) -> tuple[list[dict], list[dict]]:
    metrics, requests = [], []
    for minute in range(minutes):
        ts = (END - timedelta(minutes=minute + 1)).replace(tzinfo=None)
        dims = ODD_DIMENSIONS[minute % len(ODD_DIMENSIONS)]
        for name, value in (("Total Tokens", 30 + minute), ("Prompt Tokens", 20), ("Completion Tokens", 10)):
            metrics.append(
                {"timestamp": ts, "name": name, "value": value, "valueSum": value * 2.0, "valueCount": 2}
                | ({"customDimensions": dims} if dims is not None else {})
            )
        request_dims = None if dims is None else {"Subscription Name": dims.get("Client Subscription", "")}
        requests.append(
            {
                "timestamp": ts,
                "name": "POST /chat",
                "resultCode": "429" if minute % 4 else "200",
                "success": minute % 4 == 0,
                "duration": 12.5,
                "itemCount": 1,
            }
            | ({"customDimensions": request_dims} if request_dims is not None else {})
        )
    return metrics, requests


@pytest.fixture
def odd_store(store: Store) -> Store:
    metrics, requests = _rows()
    store.append("customMetrics", metrics)
    store.append("requests", requests)
    return store


@pytest.mark.parametrize("name", sorted(kql.catalog()))
def test_distinct_value_path_equals_per_row_prelude(
    name: str, odd_store: Store, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"start_time": END - timedelta(hours=3), "end_time": END}
    params = {k: v for k, v in params.items() if k in {p.name for p in kql.get_query(name).params}}
    fast_backend = LocalBackend(settings, odd_store)
    fast = fast_backend.run_query(fast_backend.bind(name, params)).frame
    monkeypatch.setattr(local, "DISTINCT_LIMIT", 0)  # every table falls back to per-row extraction
    per_row_backend = LocalBackend(settings, odd_store)
    per_row = per_row_backend.run_query(per_row_backend.bind(name, params)).frame
    assert not fast.empty or name == "throttled_minutes"
    pd.testing.assert_frame_equal(fast, per_row)
