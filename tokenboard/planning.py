"""Limit planning: what tokens-per-minute limit fits each subscription.

The numbers come from ``limit_plan`` (per subscription: minute percentiles, and the what-if for
one candidate limit, at minute grain); this module adds the configured limit, the shares, and
rounds the suggested limit up to a whole ``SUGGESTION_STEP`` (which can only lower the minutes
over it). The page and ``report limit_plan`` both start here.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd

from tokenboard.config import Settings

SUGGESTION_STEP = 100
MINUTE = timedelta(minutes=1)  # the what-if's grain
BUDGETS = (0.001, 0.005, 0.01, 0.02, 0.05)  # refusal budgets offered on the page (share of minutes)
COLUMNS = (
    "subscription",
    "active_minutes",
    "p50_tokens_per_minute",
    "p95_tokens_per_minute",
    "p99_tokens_per_minute",
    "max_tokens_per_minute",
    "tokens_per_minute_limit",
    "candidate_limit",
    "minutes_over_candidate",
    "share_of_minutes_over_candidate",
    "tokens_refused_at_candidate",
    "refusal_budget",
    "suggested_limit",
)


def plan(frame: pd.DataFrame, settings: Settings, candidate: int, budget: float) -> pd.DataFrame:
    """``limit_plan`` rows with the configured limit and the suggestion, busiest minute first."""
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    data = frame.rename(
        columns={
            "p50_tokens": "p50_tokens_per_minute",
            "p95_tokens": "p95_tokens_per_minute",
            "p99_tokens": "p99_tokens_per_minute",
            "max_tokens": "max_tokens_per_minute",
            "minutes_over": "minutes_over_candidate",
            "tokens_refused": "tokens_refused_at_candidate",
        }
    )
    data["tokens_per_minute_limit"] = (
        data["subscription"].map(settings.limits.for_subscription).astype("int64")
    )
    data["candidate_limit"] = int(candidate)
    minutes = data["active_minutes"].where(data["active_minutes"] > 0)
    data["share_of_minutes_over_candidate"] = (data["minutes_over_candidate"] / minutes).fillna(0.0)
    data["refusal_budget"] = float(budget)
    data["suggested_limit"] = data["suggested"].map(round_up).astype("int64")
    return data[list(COLUMNS)].reset_index(drop=True)


def round_up(tokens: float, step: int = SUGGESTION_STEP) -> int:
    """A limit at or above ``tokens``, in whole steps (never below one step)."""
    return max(step, math.ceil(tokens / step) * step)


def duration_curve(minutes: pd.Series) -> pd.DataFrame:
    """Per-minute tokens sorted from the busiest minute down, with each minute's rank as a share
    of the minutes (so a line at a limit crosses the curve at the share of minutes over it)."""
    ordered = minutes.sort_values(ascending=False, ignore_index=True)
    share = (pd.RangeIndex(1, len(ordered) + 1) / max(1, len(ordered))).to_numpy()
    return pd.DataFrame({"share_of_minutes": share, "tokens": ordered.to_numpy()})
