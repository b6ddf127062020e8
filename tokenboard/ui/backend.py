"""One backend per process and settings; a backend that can seed fills its empty store on first start."""

from __future__ import annotations

import streamlit as st

from tokenboard.backends import Backend, make_backend
from tokenboard.config import Settings


def get_backend(settings: Settings) -> Backend:
    return _backend(settings_key(settings), settings)


def settings_key(settings: Settings) -> str:
    """Settings as a cache key (``repr`` masks every secret)."""
    return repr(settings)


@st.cache_resource(show_spinner="Preparing the demo data (first start only)…")
def _backend(key: str, _settings: Settings) -> Backend:
    backend = make_backend(_settings)
    if _settings.store.seed_on_start:
        backend.seed_if_empty()
    return backend
