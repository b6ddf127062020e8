"""A damaged segment on the dashboard: one warning naming the file and its rows, the page
showing the numbers of the rest (pandas over the good rows), no error box."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pagetools import PAGES
from streamlit.testing.v1 import AppTest

from tokenboard.store import Store
from tokenboard.views.timerange import format_instant

END = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def requests(hour: int, count: int, code: str = "200") -> list[dict]:
    return [
        {
            "timestamp": (END - timedelta(hours=hour, seconds=i)).replace(tzinfo=None),
            "id": f"{hour}-{i}",
            "resultCode": code,
            "success": code == "200",
            "customDimensions": {"Subscription Name": "contoso-prod", "API Name": "ai"},
            "itemCount": 1,
        }
        for i in range(count)
    ]


@pytest.fixture
def damaged_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Three request segments in the last 24 h; the one with 7 rows is damaged."""
    for name in list(os.environ):
        if name.startswith("TOKENBOARD_"):
            monkeypatch.delenv(name)
    store = Store(tmp_path / "data")
    monkeypatch.setenv("TOKENBOARD_DATA_DIR", str(store.data_dir))
    monkeypatch.setenv("TOKENBOARD_SEED_ON_START", "false")
    store.append("requests", requests(2, 40))
    damaged = store.append("requests", requests(3, 7, code="429"))
    store.append("requests", requests(4, 12, code="429"))
    (store.table_dir("requests") / damaged.file).write_bytes(b"PAR1 damaged on disk")
    return store


def test_a_damaged_segment_is_one_warning_and_the_page_shows_the_rest(damaged_store: Store) -> None:
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120)
    at.query_params["end"] = format_instant(END)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    warnings = [w.value for w in at.warning if "could not be read" in w.value]
    assert len(warnings) == 1, warnings
    [aside] = damaged_store.set_aside()
    assert str(aside.path) in warnings[0] and "7 rows are left out of every query" in warnings[0]
    requests_shown = next(m for m in at.metric if m.label == "Requests")
    assert requests_shown.value == "52"  # the 40 + 12 rows of the good segments
    hit_rate = next(m for m in at.metric if m.label == "Limit-hit rate")
    assert hit_rate.value == f"{12 / 52 * 100:.1f}%"

    at.run()  # the next run (results cached) still warns, once
    assert len([w for w in at.warning if "could not be read" in w.value]) == 1
