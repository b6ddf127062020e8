"""An independent cost computation over raw customMetrics rows, for both backends' tests.

It shares nothing with ``tokenboard.money``: its own JSON parsing of customDimensions, its own
name resolution and price lookup (plain dicts below), pandas' own day bins.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from tokenboard.config import Settings

PRICE_CHANGE = date(2025, 3, 2)  # inside the seeded demo's three days
# (valid_from, input, cached_input, output, reasoning) per 1M tokens; None: from the start.
PRICES: dict[str, list[tuple[date | None, float, float, float, float]]] = {
    "gpt-4o-mini": [(None, 0.15, 0.075, 0.60, 0.60), (PRICE_CHANGE, 0.30, 0.10, 1.20, 1.20)],
    "gpt-4.1": [(None, 2.0, 0.5, 8.0, 8.0)],
    "o4-mini": [(None, 1.1, 0.275, 4.4, 5.0)],  # its own reasoning price
    "gpt-5-mini": [(None, 0.25, 0.025, 2.0, 2.0)],
    "text-embedding-3-small": [(None, 0.02, 0.02, 0.0, 0.0)],
    "gpt-35-turbo-instruct": [(None, 1.5, 1.5, 2.0, 2.0)],
}
ALIASES = {"prod-4o-mini": "gpt-4o-mini"}
API_MODELS = {"completions-v1": "gpt-35-turbo-instruct"}
UNPRICED = {"claude-sonnet-4", "Phi-4-mini-instruct"}


def money_settings(settings: Settings) -> Settings:
    """``settings`` with the prices above as configuration (and no shipped list)."""
    return settings.replace(**money_config())


def money_environment() -> dict[str, str]:
    """The same configuration as ``TOKENBOARD_*`` environment variables (JSON tables)."""
    return {
        f"TOKENBOARD_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in money_config().items()
    }


def money_config() -> dict:
    prices = {
        model: [
            {
                **({"valid_from": start.isoformat()} if start else {}),
                "input": price_in,
                "cached_input": cached,
                "output": out,
                **({"reasoning": reasoning} if reasoning != out else {}),
            }
            for start, price_in, cached, out, reasoning in periods
        ]
        for model, periods in PRICES.items()
    }
    return {
        "default_prices": "false",
        "prices": prices,
        "model_aliases": ALIASES,
        "api_models": API_MODELS,
        "currency": "EUR",
    }


def _rate(model: str, day: date) -> tuple[float, float, float, float] | None:
    found = None
    for start, *rates in PRICES.get(model, []):
        if start is None or start <= day:
            found = tuple(rates)
    return found  # type: ignore[return-value]


def expected_costs(
    metrics: pd.DataFrame, settings: Settings, start, end, keys: list[str], tz: str = "UTC"
) -> pd.DataFrame:
    """Cost, its parts and unpriced tokens by ``keys`` (any of subscription, api, model, month:
    the first instant of the row's calendar month in ``tz``); each UTC day at its own price."""
    t = settings.telemetry
    rows = metrics[(metrics["timestamp"] >= pd.Timestamp(start)) & (metrics["timestamp"] < pd.Timestamp(end))]
    dims = rows["customDimensions"].map(json.loads)
    rows = rows.assign(
        subscription=dims.map(lambda d: d.get(t.subscription_dimension, "")),
        api=dims.map(lambda d: d.get(t.api_dimension, "")),
        model=dims.map(lambda d: d.get(t.model_dimension, "")),
        day=rows["timestamp"].dt.floor("D"),
        month=rows["timestamp"].dt.tz_convert(tz).dt.tz_localize(None).dt.to_period("M").dt.to_timestamp(),
    )
    wide = rows.pivot_table(
        index=["day", "month", "subscription", "api", "model"],
        columns="name",
        values="valueSum",
        aggfunc="sum",
    ).fillna(0.0)
    wide = wide.reindex(
        columns=[t.total_metric, t.prompt_metric, t.cached_metric, t.completion_metric, t.reasoning_metric],
        fill_value=0.0,
    ).reset_index()
    out = []
    for row in wide.itertuples(index=False):
        day, month, subscription, api, model, total, prompt, cached, completion, reasoning = row
        name = ALIASES.get(model, model) if model else API_MODELS.get(api)
        rate = _rate(name, day.date()) if name else None
        record = {"day": day, "month": month, "subscription": subscription, "api": api, "model": model}
        if rate is None:
            record |= {"cost_input": 0.0, "cost_cached_input": 0.0, "cost_output": 0.0, "priced": 0.0}
            record["unpriced_tokens"] = total
        else:
            price_in, price_cached, price_out, price_reasoning = rate
            record |= {
                "cost_input": (prompt - cached) * price_in / 1e6,
                "cost_cached_input": cached * price_cached / 1e6,
                "cost_output": ((completion - reasoning) * price_out + reasoning * price_reasoning) / 1e6,
                "priced": prompt + completion,
                "unpriced_tokens": 0.0,
            }
        out.append(record)
    frame = pd.DataFrame(out)
    frame["month"] = frame["month"].dt.tz_localize(tz).dt.tz_convert("UTC")
    summed = frame.groupby(keys, as_index=False)[
        ["cost_input", "cost_cached_input", "cost_output", "priced", "unpriced_tokens"]
    ].sum()
    summed["cost"] = summed["cost_input"] + summed["cost_cached_input"] + summed["cost_output"]
    nothing_priced = (summed["priced"] == 0) & (summed["unpriced_tokens"] > 0)
    for column in ("cost", "cost_input", "cost_cached_input", "cost_output"):
        summed[column] = summed[column].mask(nothing_priced)
    return summed.rename(columns={"priced": "priced_tokens"})


def assert_costs_match(table: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    """The report's cost columns equal the reference, key by key (costs to 1e-6, as rounded)."""
    if "month" in keys:  # the same instants, whatever the resolution
        table = table.assign(month=table["month"].astype("datetime64[ns, UTC]"))
        want = want.assign(month=want["month"].astype("datetime64[ns, UTC]"))
    got = table.set_index(keys)
    want = want.set_index(keys)
    assert sorted(got.index) == sorted(want.index)
    for column in ("cost", "cost_input", "cost_cached_input", "cost_output"):
        pd.testing.assert_series_equal(
            got[column].sort_index(), want[column].sort_index(), check_names=False, atol=1e-6, rtol=0
        )
    pd.testing.assert_series_equal(
        got["unpriced_tokens"].sort_index(), want["unpriced_tokens"].sort_index(), check_names=False
    )
