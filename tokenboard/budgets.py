"""Budgets and token quotas per subscription: spent this period, the forecast, when they run out.

Monthly budgets (``[budgets]``: money, Total Tokens, or both) run per calendar month in UTC, the
month Azure bills. Token quotas are ``llm-token-limit``'s ``token-quota`` per
``token-quota-period`` (calendar periods in UTC, as the gateway counts them): past its quota a
subscription is answered 403 until the period ends. Forecasts come from ``tokenboard.forecast``:
recent days by weekday (hours of the week for a daily quota, the last minutes' pace for an
hourly one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from tokenboard import forecast, money
from tokenboard.config import Settings
from tokenboard.gateway.limiter import quota_period

TOKENS = "tokens"
# The bins a quota period is forecast in.
QUOTA_CADENCE = {
    "Hourly": forecast.MINUTES,
    "Daily": forecast.HOURS,
    "Weekly": forecast.DAYS,
    "Monthly": forecast.DAYS,
    "Yearly": forecast.DAYS,
}


@dataclass(frozen=True)
class Window:
    """A period as of ``now``, and the range and bins to query for it (history included)."""

    period: str
    start: datetime
    end: datetime
    now: datetime
    cadence: forecast.Cadence

    @property
    def query_start(self) -> datetime:
        """The period start, or earlier when the forecast needs more history than the period has."""
        step = self.cadence.step
        current = forecast.EPOCH + ((pd.Timestamp(self.now) - forecast.EPOCH) // step) * step
        history = (current - self.cadence.window * step).to_pydatetime()
        return min(self.start, history)

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"start_time": self.query_start, "end_time": self.now, "bin_size": self.cadence.step, **extra}

    @property
    def days_left(self) -> float:
        return (self.end - self.now) / timedelta(days=1)


def window(now: datetime, period: str = "Monthly") -> Window:
    """The calendar period (UTC) holding ``now``; budgets are Monthly, quotas their own period."""
    start, end = quota_period(now.timestamp(), period)
    return Window(
        period,
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
        now.astimezone(UTC),
        QUOTA_CADENCE[period],
    )


@dataclass(frozen=True)
class BurnDown:
    """One subscription against one limit: a budget (money or tokens) or its token quota."""

    subscription: str
    unit: str  # the currency, or "tokens"
    quota: bool
    outlook: forecast.Outlook
    unpriced_tokens: float = 0.0  # money budgets: this period's tokens that have no price

    @property
    def limit(self) -> float:
        return float(self.outlook.limit or 0.0)

    @property
    def status(self) -> str:
        crossing = self.outlook.crossing
        if crossing is None:
            return "within quota" if self.quota else "within budget"
        if self.outlook.crossed:
            return "quota spent: 403s" if self.quota else "over budget"
        return "runs out"


def budget_burndowns(
    basis: pd.DataFrame, settings: Settings, period: Window, subscriptions: tuple[str, ...] = ()
) -> list[BurnDown]:
    """Each configured budget from ``cost_basis`` rows in daily bins over ``period.params()``."""
    rows = money.priced(money.by_subscription(basis), settings)
    burns = []
    for subscription, budget in settings.budgets.items():
        if subscriptions and subscription not in subscriptions:
            continue
        mine = rows[rows["subscription"] == subscription]
        for unit, limit, column in (
            (settings.currency, budget.cost, "cost"),
            (TOKENS, budget.tokens, "total_tokens"),
        ):
            if limit is None:
                continue
            amounts = mine.groupby("timestamp")[column].sum()
            outlook = forecast.outlook(amounts, period.start, period.end, period.now, period.cadence, limit)
            in_period = mine[pd.to_datetime(mine["timestamp"], utc=True) >= pd.Timestamp(period.start)]
            unpriced = float(in_period["unpriced_tokens"].sum()) if unit != TOKENS else 0.0
            burns.append(BurnDown(subscription, unit, False, outlook, unpriced))
    return ranked(burns)


def quota_of(settings: Settings, subscription: str) -> int:
    """The token quota a subscription has (0: none): its override, else ``limits.token_quota``."""
    return int(settings.gateway.token_quota_overrides.get(subscription, settings.limits.token_quota))


def has_quotas(settings: Settings) -> bool:
    return bool(settings.limits.token_quota or any(settings.gateway.token_quota_overrides.values()))


def quota_burndowns(
    series: pd.DataFrame, settings: Settings, period: Window, subscriptions: tuple[str, ...] = ()
) -> list[BurnDown]:
    """Each subscription with a quota, from ``tokens_over_time`` split by subscription over
    ``period.params()``: every subscription seen when a quota applies to all."""
    seen = {str(s) for s in series["series"]} if not series.empty else set()
    named = set(settings.gateway.token_quota_overrides)
    candidates = sorted((seen | named) - {""})
    burns = []
    for subscription in candidates:
        quota = quota_of(settings, subscription)
        if quota <= 0 or (subscriptions and subscription not in subscriptions):
            continue
        mine = series[series["series"] == subscription] if not series.empty else series
        amounts = mine.set_index("timestamp")["tokens"] if not mine.empty else pd.Series(dtype="float64")
        outlook = forecast.outlook(amounts, period.start, period.end, period.now, period.cadence, quota)
        burns.append(BurnDown(subscription, TOKENS, True, outlook))
    return ranked(burns)


def ranked(burns: list[BurnDown]) -> list[BurnDown]:
    """Soonest to run out first (those already out first of all); then the fullest forecast."""

    def key(burn: BurnDown) -> tuple[bool, datetime, float, str]:
        crossing = burn.outlook.crossing or datetime.max.replace(tzinfo=UTC)
        share = burn.outlook.projected / burn.limit if burn.limit else 0.0
        return (burn.outlook.crossing is None, crossing, -share, burn.subscription)

    return sorted(burns, key=key)


def table(burns: list[BurnDown]) -> pd.DataFrame:
    """One row per burn-down, in rank order (what the CSV download holds)."""
    columns = [
        "subscription",
        "limit",
        "unit",
        "spent",
        "spent_share",
        "forecast",
        "forecast_share",
        "runs_out",
        "status",
        "unpriced_tokens",
    ]
    rows = [
        {
            "subscription": b.subscription,
            "limit": b.limit,
            "unit": b.unit,
            "spent": b.outlook.spent,
            "spent_share": b.outlook.spent / b.limit if b.limit else 0.0,
            "forecast": b.outlook.projected,
            "forecast_share": b.outlook.projected / b.limit if b.limit else 0.0,
            "runs_out": pd.Timestamp(b.outlook.crossing) if b.outlook.crossing else pd.NaT,
            "status": b.status,
            "unpriced_tokens": b.unpriced_tokens,
        }
        for b in burns
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["runs_out"] = pd.to_datetime(frame["runs_out"], utc=True)
    return frame
