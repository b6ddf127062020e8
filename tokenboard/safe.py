"""Text from telemetry, a gateway's reply or a URL, made to show as text and nothing else.

In the foundation layer: the backends word their own descriptions with it, the views and the
Streamlit glue everything else.

Subscription, API, model and metric names come from whoever can call the gateway or write to
Application Insights; a reply comes from a model. Streamlit renders Markdown in most of its
strings (captions, alerts, metric labels and values, ``st.table`` cells) and plotly renders a
small HTML dialect (``<a href>``, ``<b>``, ``<br>``...) in trace names, category ticks, bar texts
and hover labels. So a name like ``[x](https://evil.example)`` would become a live link, and
``![](https://evil.example/p.png)`` an image the browser fetches. Every such string passes
through one of these functions first:

- :func:`md` for any Streamlit string that renders Markdown;
- :func:`figure` for a plotly figure (it escapes every text the figure carries);
- :func:`table` for a frame shown with ``st.table`` (its cells render Markdown).

``st.dataframe`` cells, widget options and ``st.code`` show text as it is and need none of this.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Characters that start Markdown (or Streamlit's extensions of it) anywhere in a line: escapes,
# code, emphasis, links and images, raw HTML and autolinks, tables, math, strikethrough, the
# :material/...: and :color[...] directives, e-mail autolinks, entities.
_ANYWHERE = re.compile(r"([\\`*_\[\]<>|$~:@&])")
# ...and what starts a block only at the beginning of a line (headings, lists, setext underlines,
# rules): a marker followed by a space, the end of the line, or more markers. "-5%" stays as it is.
_LINE_START = re.compile(r"^(\s*)([#+=-])(?=[\s#+=-]|$)", re.MULTILINE)
_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)", re.MULTILINE)
# GFM also finds links in plain text after parsing, where no escape reaches: http(s)://...,
# www.example.com and name@example.com. A word joiner (U+2060, invisible and zero-width) inside
# each of those patterns leaves the text looking the same and the pattern unmatched. Streamlit
# also turns :material/name: into an icon after parsing: the joiner stops that too.
_AUTOLINK = re.compile(r"(?:https?|www)(?=\\?[:.])|:(?=material/)|@", re.IGNORECASE)
JOINER = "\u2060"

# Trace attributes whose strings plotly draws (labels, ticks, bar texts, hover labels).
_TRACE_TEXT = ("name", "x", "y", "text", "hovertext", "customdata", "meta", "labels")


def md(value: object, *, lines: bool = False) -> str:
    """``value`` as Markdown that renders exactly as its characters, never as a link, image or HTML.

    Line breaks are kept as line breaks with ``lines=True`` (a reply), else they read as spaces.
    """
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _ANYWHERE.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    text = _ORDERED.sub(r"\1\\\2", text)
    text = _AUTOLINK.sub(lambda m: m.group(0) + JOINER, text)
    return text.replace("\n", "  \n") if lines else text


def html(value: object) -> str:
    """``value`` escaped for plotly's HTML-like text: ``<a href=...>`` shows as those characters."""
    return _html.escape(str(value), quote=False)


def figure(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` whose every string is shown literally.

    Escapes trace names, category values (ticks and hover labels read them), texts, custom data,
    ``meta``, colour-bar titles, annotations and axis titles. Formatting belongs in
    ``hovertemplate`` / ``texttemplate``, which are left as they are: put data into them only
    through ``%{...}`` (``%{meta}`` for a fixed string), never by string concatenation.
    """
    out = go.Figure(fig)
    for trace in out.data:
        for attr in _TRACE_TEXT:
            if attr in trace and trace[attr] is not None:
                trace[attr] = _escaped(trace[attr])
        for path in ("colorbar.title.text", "marker.colorbar.title.text", "legendgrouptitle.text"):
            _escape_at(trace, path)
    layout = out.layout
    for annotation in layout.annotations or ():
        if annotation.text is not None:
            annotation.text = html(annotation.text)
    _escape_at(layout, "title.text")
    _escape_at(layout, "legend.title.text")
    out.for_each_xaxis(lambda axis: _escape_axis(axis))
    out.for_each_yaxis(lambda axis: _escape_axis(axis))
    return out


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for ``st.table``: every text cell, index value and column name through :func:`md`."""
    out = frame.copy()
    out.columns = [md(c) if isinstance(c, str) else c for c in out.columns]
    out.index = out.index.map(lambda v: md(v) if isinstance(v, str) else v)
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: md(v) if isinstance(v, str) else v)
    return out


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return html(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "OUS" or value.size == 0:
            return value
        return _each(value, lambda v: html(v) if isinstance(v, str) else v)
    if isinstance(value, list | tuple):
        return type(value)(_escaped(v) for v in value)
    return value


def _each(array: np.ndarray, function: Callable[[Any], Any]) -> np.ndarray:
    flat = [function(v) for v in array.ravel().tolist()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(array.shape)


def _escape_at(obj: Any, path: str) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        if name not in obj:
            return
        obj = obj[name]
    if leaf in obj and isinstance(obj[leaf], str):
        obj[leaf] = html(obj[leaf])


def _escape_axis(axis: Any) -> None:
    _escape_at(axis, "title.text")
    if axis.ticktext is not None:
        axis.ticktext = _escaped(axis.ticktext)
