"""Limit hits per subscription, and by cause: the Throttling page and the throttling report both
start here."""

from __future__ import annotations

import pandas as pd

# The causes limit_hit_causes tells apart (its columns, in order).
CAUSES = ("gateway_429", "backend_429", "quota_403", "other_403", "unattributed")


def by_subscription(limit_hits: pd.DataFrame) -> pd.DataFrame:
    """``limit_hits`` rows (subscription × API) summed per subscription, first and last hit kept."""
    return limit_hits.groupby("subscription", as_index=False).agg(
        requests=("requests", "sum"),
        rate_limited=("rate_limited", "sum"),
        quota_exceeded=("quota_exceeded", "sum"),
        first_hit=("first_hit", "min"),
        last_hit=("last_hit", "max"),
    )


def causes_by(causes: pd.DataFrame, by: str) -> pd.DataFrame:
    """``limit_hit_causes`` rows summed per ``by`` (subscription, api or timestamp)."""
    if causes.empty:
        return pd.DataFrame({by: pd.Series(dtype="str"), **{c: pd.Series(dtype="int64") for c in CAUSES}})
    return causes.groupby(by, as_index=False)[list(CAUSES)].sum()
