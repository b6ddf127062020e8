"""How raw values read on screen: empty dimension values, numbers, dimension names."""

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


def tokens(value: float) -> str:
    """Whole tokens with thousands separators: ``1,234,567``."""
    return f"{round(value):,}"


def percent(value: float, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%"


def change(current: float, previous: float) -> str | None:
    """Relative change against the previous period, or None when there is nothing to compare."""
    if not previous or round((current - previous) / previous, 3) == 0:
        return None
    return f"{(current - previous) / previous:+.1%}"


def change_points(current: float, previous: float) -> str | None:
    """Change of a rate in percentage points (None when it rounds to no change)."""
    points = round((current - previous) * 100, 1)
    return None if points == 0 else f"{points:+.1f} pp"


SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: float | None, currency: str) -> str:
    """An amount of money: ``$1,234.56``, ``1,234.56 CHF``; small amounts keep 4 decimals
    (``$0.0345`` per 1K calls); none (nothing priced) is a dash, never 0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    digits = 4 if 0 < abs(value) < 1 else 2
    number = f"{abs(value):,.{digits}f}"
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def compact(value: float) -> str:
    """A token count in short: ``950``, ``12.3K``, ``1.2M``, ``3.4B``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{round(value):,}"
