"""How numbers read on screen: one format for each kind of number, everywhere.

Headline values, captions, notices, chart hover text and axes, and table columns all take
their format from here: whole numbers with thousands separators (``1,234,567``), percentages
with one decimal (``12.3%``), changes with their sign (``+12.3%``, ``+0.4 pp``). The same
digits whatever the browser's language. Files are not formatted here: the one writer
(``tokenboard/export.py``) writes plain numbers.
"""

from __future__ import annotations

import math
from datetime import timedelta

# plotly (d3-format) specifiers, for hover templates (``%{y:,.0f}``) and axes.
PLOT_WHOLE = ",.0f"
PLOT_PERCENT = ".1%"
PLOT_AXIS_PERCENT = ".0%"
PLOT_COMPACT = ".3~s"
PLOT_MONEY = ",.2f"  # 17.4M: colour bars and axes where whole numbers would not fit
# st.column_config NumberColumn formats (sprintf-js). Percent columns are shown as
# fraction x 100 (``ui.panels`` scales them), so that they too read "12.3%".
COLUMN_WHOLE = "%,.0f"
COLUMN_DECIMAL = "%,.2f"
COLUMN_PERCENT = "%.1f%%"


def whole(value: float) -> str:
    """Tokens, calls, requests: ``1,234,567``."""
    return f"{round(value):,}"


def percent(fraction: float) -> str:
    """A share or rate (0..1) with one decimal: ``12.3%``; a small share that is not zero reads
    ``<0.1%`` rather than ``0.0%``."""
    if 0 < abs(fraction) < 0.0005:
        return "<0.1%" if fraction > 0 else ">-0.1%"
    return f"{fraction * 100:.1f}%"


def change(current: float, previous: float) -> str | None:
    """Relative change against the previous period (``+12.3%``), or None when there is nothing
    to compare with or it rounds to no change."""
    if not previous or round((current - previous) / previous, 3) == 0:
        return None
    return f"{(current - previous) / previous:+.1%}"


def points(current: float, previous: float) -> str | None:
    """Change of a rate in percentage points (``+0.4 pp``; None when it rounds to no change)."""
    difference = round((current - previous) * 100, 1)
    return None if difference == 0 else f"{difference:+.1f} pp"


def compact(value: float) -> str:
    """A token count in short, where a whole number would not fit: ``950``, ``12.3K``, ``1.2M``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return whole(value)


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


def column_money(currency: str) -> str:
    """The table column format of an amount of money, like ``money`` (``$1,234.56``)."""
    symbol = SYMBOLS.get(currency.upper(), "")
    return f"{symbol}%,.{0 if currency.upper() == 'JPY' else 2}f"


def ratio(value: float) -> str:
    """Prompt tokens per completion token: ``2.35 : 1``."""
    return f"{value:,.2f} : 1"


def milliseconds(value: float) -> str:
    return f"{value:,.0f} ms"


def seconds(value: float) -> str:
    return f"{value:,.0f} s"


def length(span: timedelta) -> str:
    """A stretch of time in its largest whole-ish unit: ``45 min``, ``2 h``, ``1.5 h``, ``30 d``."""
    minutes = span.total_seconds() / 60
    if minutes < 60:
        return f"{minutes:,.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:,.3g} h"
    return f"{hours / 24:,.3g} d"
