"""Shared fixtures: settings, an empty store, a seeded demo store.

Area-specific fixtures live in the conftest.py of their folder (tests/azure, tests/gateway,
tests/pages); this file holds what every area uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings
from tokenboard.store import Store


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, seed_on_start=False)


@pytest.fixture
def store(data_dir: Path) -> Store:
    return Store(data_dir)


@pytest.fixture
def local_backend(settings: Settings, store: Store) -> LocalBackend:
    return LocalBackend(settings, store)
