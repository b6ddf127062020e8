"""What every page does first (page config, settings, backend, sidebar, the link notice) and its
sections.

A page is a column of sections: each loads its own queries and draws itself, at the same
time as the others, so the page fills in as results arrive instead of waiting for its
slowest query, and one failing query takes down only its own section.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from tokenboard import safe
from tokenboard.backends import Backend
from tokenboard.config import Settings
from tokenboard.ui import data, errors
from tokenboard.ui.access import guard_page
from tokenboard.ui.backend import get_backend
from tokenboard.ui.settings import app_settings
from tokenboard.ui.sidebar import Filters, page_links, sidebar
from tokenboard.views.labels import label
from tokenboard.views.links import Rule

# Headline values wrap instead of ending in "…" (a long subscription name must stay readable
# at 1280 px); the value shrinks a little on narrow columns.
CSS = """
<style>
  .block-container {padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1400px;}
  [data-testid="stMetric"] {background: #f8fafc;}
  [data-testid="stMetricValue"] {font-size: clamp(1.15rem, 1.55vw, 1.65rem); line-height: 1.25;}
  [data-testid="stMetricValue"] > div, [data-testid="stMetricValue"] p {
    white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;
  }
  [data-testid="stMetricLabel"] > div, [data-testid="stMetricLabel"] p {
    white-space: normal; overflow: visible; text-overflow: clip;
  }
  h1 {font-size: 1.9rem !important; font-weight: 650 !important;}
  h3 {font-size: 1.15rem !important; font-weight: 600 !important; margin-top: 0.6rem;}
</style>
"""


@dataclass(frozen=True)
class Page:
    settings: Settings
    backend: Backend
    filters: Filters


def start(title: str, icon: str, intro: str = "", links: Mapping[str, Rule] | None = None) -> Page:
    """Check the visitor, configure the page and draw the shared sidebar; a failure stops with one
    clear message.

    ``links``: what the page's own URL parameters accept; anything a link says that neither
    the sidebar nor the page can take is named in one notice under the title.
    """
    settings = app_settings()
    guard_page(settings)
    st.set_page_config(page_title=f"{title} · tokenboard", page_icon=icon, layout="wide")
    st.html(CSS)
    data.new_page_run()
    errors.start_page()
    ignored = page_links(links or {})  # before any widget takes its value from the URL
    with errors.shown():
        backend = get_backend(settings)
        filters = sidebar(backend, settings)
    st.title(title)
    st.caption(f"{intro} · {filters.label}" if intro else filters.label)
    if ignored:
        st.warning(ignored, icon=":material/link_off:")
    return Page(settings, backend, filters)


def section(draw: Callable[..., None]) -> Callable[..., None]:
    """Make ``draw`` a part of the page that loads and draws on its own; call the result in place.

    On a full run it runs as a parallel fragment, at the same time as the page's other
    sections, with its own spinner while its queries load; a widget inside it reruns only
    the section. A backend, query or store failure is shown in the section's place.
    """

    @functools.wraps(draw)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            draw(*args, **kwargs)
        except errors.CAUGHT as exc:
            errors.show(exc)

    return st.fragment(guarded, parallel=True)


def empty(filters: Filters, what: str = "token usage") -> None:
    """Say plainly that the range (with its filters) holds nothing (the section then draws nothing
    more)."""
    chosen = "; ".join(
        f"{name}: {', '.join(safe.md(label(v)) for v in values)}" for name, values in filters.chosen.items()
    )
    where = f" for {chosen}" if chosen else ""
    advice = "Pick a longer time range or change the filters in the sidebar."
    st.info(f"No {what} between {filters.label}{where}. {advice}", icon=":material/info:")
