"""How raw dimension values read on screen: empty ones, unicode ones, dimension names.

Numbers are formatted in ``views/formats.py``."""

from __future__ import annotations

import math

import pandas as pd

NONE_LABEL = "(none)"
DIMENSIONS = {"subscription": "Subscription", "api": "API", "model": "Model"}


def label(value: object) -> str:
    """A dimension value for display: empty or missing becomes "(none)"; unicode stays as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return NONE_LABEL
    text = str(value)
    return text if text.strip() else NONE_LABEL


def unlabel(text: str) -> str:
    """The raw value behind a label (the inverse of ``label`` for filter widgets)."""
    return "" if text == NONE_LABEL else text


def labelled(
    frame: pd.DataFrame, columns: tuple[str, ...] = ("subscription", "api", "model", "series")
) -> pd.DataFrame:
    """A copy with each dimension column's values passed through ``label``."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = out[column].map(label).astype("str")
    return out
