"""A figure together with the exact numbers it draws (what the CSV download holds), and the
time axis every chart over time shares: its local bins, zeros where no data arrived, and the
bins at either end that hold only part of their time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from tokenboard.localtime import Bins
from tokenboard.views import style


@dataclass(frozen=True)
class Chart:
    figure: go.Figure
    data: pd.DataFrame


@dataclass(frozen=True)
class Axis:
    """The time axis of a chart over ``bins``; bins from ``incomplete_from`` on are still being
    ingested or cut by the end of the range (None: every bin at the end is whole)."""

    bins: Bins
    incomplete_from: datetime | None = None

    @property
    def tz(self) -> str:
        return self.bins.tz

    @property
    def starts(self) -> pd.DatetimeIndex:
        return self.bins.starts

    def complete(self, timestamps: pd.Series) -> pd.Series:
        """False for bins that hold only part of their time: cut by the range start, still
        ingesting, or cut by the range end."""
        complete = pd.Series(True, index=timestamps.index)
        if self.bins.head_partial:
            complete &= timestamps != self.starts[0]
        if self.incomplete_from is not None:
            complete &= timestamps < pd.Timestamp(self.incomplete_from)
        return complete

    def zero_filled(self, frame: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
        """``frame`` with a row of zeros for every bin (and every combination of ``keys`` seen)
        that has none, so a line drops to zero where no data arrived instead of bridging the gap."""
        if frame.empty:
            return frame
        combos = frame[list(keys)].drop_duplicates() if keys else pd.DataFrame(index=[0])
        grid = pd.DataFrame({"timestamp": self.starts}).merge(combos, how="cross")
        out = grid.merge(frame, on=["timestamp", *keys], how="left")
        for column in values:
            out[column] = out[column].fillna(0).astype(frame[column].dtype)
        return out[list(frame.columns)]

    def shade(self, fig: go.Figure) -> go.Figure:
        """Shade the partial bins at either end, so a dip there is not read as a drop."""
        edges, tz = self.bins.edges, self.tz
        if self.bins.head_partial:
            style.mark_incomplete(fig, display_instant(edges[0], tz), display_instant(edges[1], tz))
        style.mark_incomplete(
            fig, display_instant(self.incomplete_from, tz), display_instant(self.bins.end, tz)
        )
        return fig


def display_time(values: pd.Series, tz: str) -> pd.Series:
    """UTC timestamps as wall-clock times of the display zone (plotly ignores offsets)."""
    local: pd.Series = values.dt.tz_convert(tz).dt.tz_localize(None)
    return local


def display_instant(value: Any, tz: str) -> pd.Timestamp | None:
    """One UTC instant as a naive wall-clock time of the display zone (for shapes on a time axis)."""
    if value is None:
        return None
    return pd.Timestamp(value).tz_convert(tz).tz_localize(None)
