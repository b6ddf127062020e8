"""A figure together with the exact numbers it draws (what the CSV download holds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go


@dataclass(frozen=True)
class Chart:
    figure: go.Figure
    data: pd.DataFrame


def display_time(values: pd.Series, tz: str) -> pd.Series:
    """UTC timestamps as wall-clock times of the display zone (plotly ignores offsets)."""
    local: pd.Series = values.dt.tz_convert(tz).dt.tz_localize(None)
    return local


def display_instant(value: Any, tz: str) -> pd.Timestamp | None:
    """One UTC instant as a naive wall-clock time of the display zone (for shapes on a time axis)."""
    if value is None:
        return None
    return pd.Timestamp(value).tz_convert(tz).tz_localize(None)


def completeness(timestamps: pd.Series, incomplete_from: Any) -> pd.Series:
    """True for bins that are complete, False for the still-ingesting ones."""
    if incomplete_from is None:
        return pd.Series(True, index=timestamps.index)
    return timestamps < pd.Timestamp(incomplete_from)
