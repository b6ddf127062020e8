"""What clients do after a 429: early retries, the gap to the next call, throttling episodes.

Worked out from ``retry_calls`` rows (each call around a subscription's 429s, with the
Retry-After each 429 answered), in pandas: KQL as duckdb-kql runs it has no ``prev()``.

For every 429, the subscription's next call is the client's answer to it. That call is an
**early retry** when it arrived before the 429's Retry-After had elapsed; the **gap** is the
time from the 429 to it. A subscription **backs off** when at most ``BACKS_OFF_SHARE`` of its
next calls came early, and **retries early** from ``RETRIES_EARLY_SHARE`` on. Calls come from
every client of a subscription: the next call can be another worker's, which is what the
gateway sees too. Sampled requests rows (``itemCount`` > 1) hide calls, so gaps look longer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

BACKS_OFF_SHARE = 0.1
RETRIES_EARLY_SHARE = 0.5
WINDOW = pd.Timedelta(minutes=2)  # retry_calls holds a 429's minute and the minute after it
EPISODE_SLACK = pd.Timedelta(seconds=5)  # a 429 this soon after the window reopened continues the episode
COLUMNS = (
    "subscription",
    "throttled",
    "followed",
    "early_retries",
    "early_retry_share",
    "median_gap_seconds",
    "median_retry_after_seconds",
    "verdict",
)


def next_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """Each 429 with the subscription's next call: ``gap_seconds``, ``early`` (None: no
    Retry-After logged, or no next call in the 429's minute or the minute after, the rows the
    query returns around it)."""
    ordered = calls.sort_values(["subscription", "timestamp"], kind="stable")
    following = ordered.groupby("subscription", sort=False)["timestamp"].shift(-1)
    following = following.where(following < ordered["timestamp"].dt.floor("min") + WINDOW)
    refused = ordered.assign(next_call=following)[ordered["resultCode"] == "429"]
    gap = (refused["next_call"] - refused["timestamp"]).dt.total_seconds()
    wait = refused["retry_after"].astype("Float64")
    early = (gap < wait).astype("boolean").where(gap.notna() & wait.notna())
    return refused.assign(gap_seconds=gap, early=early).reset_index(drop=True)


def behaviour(calls: pd.DataFrame) -> pd.DataFrame:
    """Per subscription: 429s, how many had a next call, the early ones and their share, the
    median gap and Retry-After, and a verdict; the earliest retriers first."""
    if calls.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    refused = next_calls(calls)
    grouped = refused.groupby("subscription", sort=False)
    data = pd.DataFrame(
        {
            "throttled": grouped.size(),
            "followed": grouped["gap_seconds"].count(),
            "judged": grouped["early"].count(),
            "early_retries": grouped["early"].sum().astype("int64"),
            "median_gap_seconds": grouped["gap_seconds"].median(),
            "median_retry_after_seconds": grouped["retry_after"].median().astype("float64"),
        }
    ).reset_index()
    data["early_retry_share"] = (data["early_retries"] / data["judged"].where(data["judged"] > 0)).astype(
        "float64"
    )
    data["verdict"] = data["early_retry_share"].map(verdict)
    data = data.sort_values(
        ["early_retry_share", "throttled", "subscription"], ascending=[False, False, True]
    )
    return data[list(COLUMNS)].reset_index(drop=True)


def verdict(early_share: float) -> str:
    if pd.isna(early_share):
        return "no retry seen"
    if early_share <= BACKS_OFF_SHARE:
        return "backs off"
    if early_share >= RETRIES_EARLY_SHARE:
        return "retries early"
    return "partly backs off"


@dataclass(frozen=True)
class Episode:
    """One run of 429s for a subscription (each within the previous ones' Retry-After, or just
    after it), second by second, and when its window reopened."""

    subscription: str
    start: pd.Timestamp
    reopened: pd.Timestamp  # the latest moment a 429 of the episode said to wait for
    seconds: pd.DataFrame  # second, admitted, throttled, other


def episodes(calls: pd.DataFrame, subscription: str) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """(first 429, reopened, 429s) of each episode of one subscription, oldest first."""
    mine = calls[(calls["subscription"] == subscription) & (calls["resultCode"] == "429")]
    mine = mine.sort_values("timestamp")
    if mine.empty:
        return []
    reopen = mine["timestamp"] + pd.to_timedelta(mine["retry_after"].fillna(0).astype("float64"), unit="s")
    # A new episode starts when a 429 comes after every earlier one's window had reopened.
    open_until = reopen.cummax().shift(1)
    starts = (mine["timestamp"] > open_until + EPISODE_SLACK).cumsum()
    runs = pd.DataFrame({"t": mine["timestamp"], "reopen": reopen, "run": starts})
    summary = runs.groupby("run").agg(start=("t", "min"), reopened=("reopen", "max"), hits=("t", "size"))
    return list(summary.itertuples(index=False, name=None))


def worst_episode(calls: pd.DataFrame, subscription: str, margin_seconds: int = 15) -> Episode | None:
    """The episode with the most 429s (the latest of equals), as calls per second by outcome."""
    runs = episodes(calls, subscription)
    if not runs:
        return None
    start, reopened, _ = max(runs, key=lambda r: (r[2], r[0]))
    low = start.floor("s") - pd.Timedelta(seconds=margin_seconds)
    high = reopened.ceil("s") + pd.Timedelta(seconds=margin_seconds)
    mine = calls[(calls["subscription"] == subscription) & calls["timestamp"].between(low, high)]
    second = mine["timestamp"].dt.floor("s")
    outcome = mine["resultCode"].map({"200": "admitted", "429": "throttled"}).fillna("other")
    counts = pd.crosstab(second, outcome).reindex(columns=["admitted", "throttled", "other"], fill_value=0)
    grid = pd.date_range(low, high, freq="s", name="second")
    seconds = counts.reindex(grid, fill_value=0).reset_index().rename(columns={"index": "second"})
    seconds.columns.name = None
    return Episode(subscription, start, reopened, seconds)
