"""Limit hits per subscription: the Throttling page and the throttling report both start here."""

from __future__ import annotations

import pandas as pd


def by_subscription(limit_hits: pd.DataFrame) -> pd.DataFrame:
    """``limit_hits`` rows (subscription × API) summed per subscription, first and last hit kept."""
    return limit_hits.groupby("subscription", as_index=False).agg(
        requests=("requests", "sum"),
        rate_limited=("rate_limited", "sum"),
        quota_exceeded=("quota_exceeded", "sum"),
        first_hit=("first_hit", "min"),
        last_hit=("last_hit", "max"),
    )
