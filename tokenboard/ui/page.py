"""What every page does first: page config, settings, backend, sidebar."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from tokenboard.backends import Backend
from tokenboard.config import Settings
from tokenboard.ui import data, errors
from tokenboard.ui.access import guard_page
from tokenboard.ui.backend import get_backend
from tokenboard.ui.settings import app_settings
from tokenboard.ui.sidebar import Filters, sidebar

CSS = """
<style>
  .block-container {padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1400px;}
  [data-testid="stMetric"] {background: #f8fafc;}
  [data-testid="stMetricValue"] {font-size: 1.65rem;}
  h1 {font-size: 1.9rem !important; font-weight: 650 !important;}
  h3 {font-size: 1.15rem !important; font-weight: 600 !important; margin-top: 0.6rem;}
</style>
"""


@dataclass(frozen=True)
class Page:
    settings: Settings
    backend: Backend
    filters: Filters


def start(title: str, icon: str, intro: str = "") -> Page:
    """Check the visitor, configure the page and draw the shared sidebar; a failure stops with one
    clear message."""
    settings = app_settings()
    guard_page(settings)
    st.set_page_config(page_title=f"{title} · tokenboard", page_icon=icon, layout="wide")
    st.html(CSS)
    data.new_page_run()
    with errors.shown():
        backend = get_backend(settings)
        filters = sidebar(backend, settings)
    st.title(title)
    st.caption(f"{intro} · {filters.label}" if intro else filters.label)
    return Page(settings, backend, filters)


def empty(filters: Filters, what: str = "token usage") -> None:
    """Say plainly that the range holds nothing, and stop the page."""
    st.info(
        f"No {what} between {filters.label}. Pick a longer time range or clear the filters in the sidebar.",
        icon=":material/info:",
    )
    st.stop()
