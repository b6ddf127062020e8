"""Shared fixtures: settings, an empty store, a seeded demo store.

Area-specific fixtures live in the conftest.py of their folder (tests/azure, tests/gateway,
tests/pages); this file holds what every area uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit_server import CHROMIUM, CHROMIUM_ARGS

from tokenboard import demo
from tokenboard.appinsights import SCHEMAS
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store

# The seeded demo store ends here (a Monday afternoon): its 3 days cover Friday office
# hours, a weekend and the February -> March month boundary.
DEMO_END = datetime(2025, 3, 3, 14, 7, tzinfo=UTC)
DEMO_DAYS = 3
DEMO_SEED = 7
ROOT = Path(__file__).resolve().parent.parent
# A second store for the local-calendar reports: 3 days that cross the October -> November
# month boundary in every zone and the end of summer time in New York (2 November 2025,
# 06:00 UTC: a 25-hour day).
CALENDAR_END = datetime(2025, 11, 3, 12, tzinfo=UTC)
CALENDAR_DAYS = 3


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def run(tmp_path: Path):
    """Run ``python -m tokenboard`` in a subprocess as cron would: a clean environment (no
    ``TOKENBOARD_*`` of the developer's, a temporary HOME and working directory, so no secrets
    file is read). ``prefix`` runs it through another command (e.g. a read-only mount).
    Returns the CompletedProcess (stdout as bytes)."""
    home = tmp_path / "home"
    home.mkdir()

    def _run(
        *args: str,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TOKENBOARD_")}
        environ.update(
            PYTHONPATH=str(ROOT), HOME=str(home), TOKENBOARD_DATA_DIR=str(data_dir or tmp_path / "data")
        )
        environ.update(env or {})
        return subprocess.run(
            [*prefix, sys.executable, "-m", "tokenboard", *args],
            cwd=home,
            env=environ,
            capture_output=True,
            timeout=120,
        )

    return _run


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, seed_on_start=False)


@pytest.fixture
def store(data_dir: Path) -> Store:
    return Store(data_dir)


@pytest.fixture
def local_backend(settings: Settings, store: Store) -> LocalBackend:
    return LocalBackend(settings, store)


# --- the shared demo store (session-scoped: treat it as read-only) ---------------------


class DemoRows(NamedTuple):
    """The seeded rows as pandas frames, read straight from the Parquet segments.

    Timestamps are tz-aware UTC; ``customDimensions`` is the raw JSON text. Shared by the
    whole session: ``.copy()`` before changing a frame.
    """

    metrics: pd.DataFrame
    requests: pd.DataFrame
    dependencies: pd.DataFrame


@pytest.fixture(scope="session")
def demo_end() -> datetime:
    """The last minute boundary of the seeded data (exclusive end of its range)."""
    return DEMO_END


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("demo") / "data", seed_on_start=False)


@pytest.fixture(scope="session")
def seeded_store(demo_settings: Settings, demo_end: datetime) -> Store:
    """3 days of demo traffic ending at ``demo_end``, seeded once per session. Do not write to it."""
    store = Store(demo_settings.store.data_dir)
    demo.seed(store, demo_settings, days=DEMO_DAYS, seed=DEMO_SEED, end=demo_end)
    return store


@pytest.fixture(scope="session")
def seeded_backend(demo_settings: Settings, seeded_store: Store) -> LocalBackend:
    return LocalBackend(demo_settings, seeded_store)


@pytest.fixture(scope="session")
def demo_rows(seeded_store: Store) -> DemoRows:
    """The seeded rows via pyarrow alone (no DuckDB, no KQL), for pandas cross-checks."""
    return DemoRows(*(_read_table(seeded_store, t) for t in ("customMetrics", "requests", "dependencies")))


@pytest.fixture(scope="session")
def calendar_end() -> datetime:
    return CALENDAR_END


@pytest.fixture(scope="session")
def calendar_store(tmp_path_factory: pytest.TempPathFactory, demo_settings: Settings) -> Store:
    """3 days of demo traffic across a DST change and a month boundary. Do not write to it."""
    store = Store(tmp_path_factory.mktemp("calendar") / "data")
    demo.seed(store, demo_settings, days=CALENDAR_DAYS, seed=DEMO_SEED, end=CALENDAR_END)
    return store


@pytest.fixture(scope="session")
def calendar_rows(calendar_store: Store) -> DemoRows:
    return DemoRows(*(_read_table(calendar_store, t) for t in ("customMetrics", "requests", "dependencies")))


def _read_table(store: Store, table: str) -> pd.DataFrame:
    paths = store.segment_paths(table)
    arrow = pa.concat_tables(pq.read_table(p) for p in paths) if paths else SCHEMAS[table].empty_table()
    frame = arrow.to_pandas()
    frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


# --- local-calendar reports against pandas ----------------------------------------------


@pytest.fixture(scope="session")
def local_usage(calendar_rows: DemoRows, demo_settings: Settings):
    """The pandas reference of ``daily_usage`` / ``monthly_usage``: the calendar store's metric
    rows in ``[start, end)`` grouped by their tz-aware local date (``%Y-%m-%d``) or month
    (``%Y-%m``) and ``keys``, one column per standard metric, calls on Total Tokens."""
    telemetry = demo_settings.telemetry
    rows = calendar_rows.metrics
    dims = rows["customDimensions"].map(json.loads)
    rows = rows.assign(
        subscription=dims.map(lambda d: str(d.get(telemetry.subscription_dimension, ""))),
        api=dims.map(lambda d: str(d.get(telemetry.api_dimension, ""))),
    )

    def compute(tz: str, start: datetime, end: datetime, period: str, keys: list[str]) -> pd.DataFrame:
        scoped = rows[(rows["timestamp"] >= pd.Timestamp(start)) & (rows["timestamp"] < pd.Timestamp(end))]
        local = scoped["timestamp"].dt.tz_convert(tz)
        scoped = scoped.assign(period=local.dt.strftime("%Y-%m-%d" if period == "day" else "%Y-%m"))
        tokens = scoped.pivot_table(
            index=["period", *keys], columns="name", values="valueSum", aggfunc="sum", fill_value=0.0
        )
        total = scoped[scoped["name"] == telemetry.total_metric]
        out = pd.DataFrame(
            {
                "total_tokens": tokens[telemetry.total_metric],
                "prompt_tokens": tokens[telemetry.prompt_metric],
                "completion_tokens": tokens[telemetry.completion_metric],
                "calls": total.groupby(["period", *keys])["valueCount"].sum(),
            }
        )
        return out.fillna({"calls": 0}).sort_index()

    return compute


# --- a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright, one per test module (``playwright install`` cannot
    work offline)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
