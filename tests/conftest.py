"""Shared fixtures: settings, an empty store, a seeded demo store.

Area-specific fixtures live in the conftest.py of their folder (tests/azure, tests/gateway,
tests/pages); this file holds what every area uses.
"""

from __future__ import annotations

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


def _read_table(store: Store, table: str) -> pd.DataFrame:
    paths = store.segment_paths(table)
    arrow = pa.concat_tables(pq.read_table(p) for p in paths) if paths else SCHEMAS[table].empty_table()
    frame = arrow.to_pandas()
    frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
