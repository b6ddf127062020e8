"""Page tests: AppTest against the shared seeded demo store, with the end of the range pinned.

Settings reach the app through ``TOKENBOARD_*`` environment variables only, so a
developer's own ``.streamlit/secrets.toml`` never decides what a test sees.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

import pytest
from pagetools import PAGES
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tokenboard.config import Settings
from tokenboard.store import Store
from tokenboard.views.timerange import format_instant

TIMEOUT = 120


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, demo_settings: Settings, seeded_store: Store) -> Settings:
    """The app's settings: the seeded store, no seeding, nothing from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("TOKENBOARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENBOARD_DATA_DIR", str(demo_settings.store.data_dir))
    monkeypatch.setenv("TOKENBOARD_SEED_ON_START", "false")
    return demo_settings


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, bytes]]:
    """(file name, bytes) behind every download button, by the file id in the button's URL.

    AppTest's media storage is discarded after each run; this records what went into it.
    """
    files: dict[str, tuple[str, bytes]] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, bytes):
            files[file_id] = (filename or "", path_or_data)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return files


@pytest.fixture
def open_page(
    app_env: Settings, demo_end: datetime, downloads: dict[str, tuple[str, bytes]]
) -> Callable[..., AppTest]:
    """Run a page with URL parameters (``end`` pinned to the demo's end unless given)."""

    def open_(page: str, **params: str | list[str]) -> AppTest:
        at = AppTest.from_file(str(PAGES[page]), default_timeout=TIMEOUT)
        at.query_params["end"] = format_instant(demo_end)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        return at

    return open_
