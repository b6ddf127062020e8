"""Money: what the tokens cost, priced at the grain where prices apply.

    cost = (prompt - cached) x input + cached x cached_input
           + (completion - reasoning) x output + reasoning x reasoning        (per 1M tokens)

``reasoning`` is the output price unless a model gives its own, so reasoning tokens, which are
part of the completion, are billed as output. A price applies from 00:00 UTC of its
``valid_from`` day, so rows are priced per UTC day (``queries/cost_basis.kql``) and only then
added up. Tokens with no price are *unpriced*: counted, named, and never costed at 0.

The price list is the shipped one (``prices.toml``, USD, its source and date written in it)
under the configured ``[prices]``, model by model. Names are looked up as the telemetry writes
them, through ``[model_aliases]`` (a deployment name -> a priced model) and, for metrics without
a model dimension, ``[api_models]``; case does not matter.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import pandas as pd

from tokenboard.config import Price, Settings, parse_prices

SHIPPED_FILE = Path(__file__).resolve().parent / "prices.toml"
PER_TOKENS = 1_000_000
TOKEN_COLUMNS = (
    "total_tokens",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "calls",
)
T = TypeVar("T")
COST_PARTS = ("cost_input", "cost_cached_input", "cost_output")
# What a report appends: the cost, its parts, and the tokens it leaves out.
COST_COLUMNS = ("cost", *COST_PARTS, "unpriced_tokens")


@dataclass(frozen=True)
class Shipped:
    """The price list that ships with tokenboard: its currency, date and source, and prices."""

    currency: str
    as_of: str
    source: str
    prices: Mapping[str, tuple[Price, ...]]


@functools.cache
def shipped() -> Shipped:
    raw = tomllib.loads(SHIPPED_FILE.read_text("utf-8"))
    return Shipped(raw["currency"], raw["as_of"], raw["source"], parse_prices(raw["prices"]))


@dataclass(frozen=True)
class PriceBook:
    """Which price applies to a model on a day, and what the telemetry's names stand for."""

    currency: str
    prices: Mapping[str, tuple[Price, ...]]  # by name as configured
    aliases: Mapping[str, str]
    api_models: Mapping[str, str]
    uses_shipped: bool  # the shipped list fills in models the configuration does not price

    @classmethod
    def of(cls, settings: Settings) -> PriceBook:
        list_ = shipped()
        uses_shipped = settings.default_prices and settings.currency.upper() == list_.currency
        prices = dict(list_.prices) if uses_shipped else {}
        configured = {name.casefold() for name in settings.prices}
        prices = {name: p for name, p in prices.items() if name.casefold() not in configured}
        prices.update(settings.prices)
        return cls(settings.currency, prices, settings.model_aliases, settings.api_models, uses_shipped)

    def priced_as(self, model: str, api: str) -> str | None:
        """The name to price: the model (through its alias), or the API's model; None: no model."""
        name = model or _lookup(self.api_models, api)
        if not name:
            return None
        return _lookup(self.aliases, name) or name

    def price(self, name: str, day: date) -> Price | None:
        """The price of ``name`` on ``day`` (the latest from on or before it), None without one."""
        periods = _lookup(self.prices, name) or ()
        found = None
        for period in periods:
            if period.valid_from is None or period.valid_from <= day:
                found = period
        return found

    def why_unpriced(self, model: str, api: str, day: date) -> str | None:
        """How an unpriced row is named ("model-x", "legacy API (no model)"); None when priced."""
        name = self.priced_as(model, api)
        if name is None:
            return f"{api} API (no model)" if api else "(no model, no API)"
        if self.price(name, day) is not None:
            return None
        shown = model or f"{api} API"
        if name != model:  # through an alias, or the API's model
            shown = f"{shown} (as {name})"
        periods = _lookup(self.prices, name)
        if periods:
            shown = f"{shown} (no price before {periods[0].valid_from})"
        return shown


def _lookup(table: Mapping[str, T], key: str) -> T | None:
    """Exact first, then regardless of case."""
    if key in table:
        return table[key]
    folded = key.casefold()
    for name, value in table.items():
        if name.casefold() == folded:
            return value
    return None


def priced(basis: pd.DataFrame, book: PriceBook | Settings) -> pd.DataFrame:
    """``cost_basis`` rows with their cost (and its parts) and their unpriced tokens.

    Adds ``priced_as`` (the model priced, "" for none), ``unpriced`` (what names the row when it
    has no price, else ""), ``cost_input``, ``cost_cached_input``, ``cost_output``, ``cost``,
    ``priced_tokens`` (prompt + completion of priced rows) and ``unpriced_tokens``. Unpriced rows
    cost 0 in those columns; ``summarise`` turns that into "no cost" where nothing was priced.
    """
    if isinstance(book, Settings):
        book = PriceBook.of(book)
    rows = basis.copy()
    if rows.empty:
        extra = ["priced_as", "unpriced", *COST_PARTS, "cost", "priced_tokens", "unpriced_tokens"]
        return rows.assign(**{c: pd.Series(dtype="str" if c in extra[:2] else "float64") for c in extra})
    day = rows["day"] if "day" in rows.columns else rows["timestamp"].dt.floor("D")
    rows["_day"] = pd.to_datetime(day, utc=True).dt.date
    keys = rows[["model", "api", "_day"]].drop_duplicates()
    rates = []
    for model, api, day_ in keys.itertuples(index=False):
        name = book.priced_as(model, api)
        price = book.price(name, day_) if name else None
        rates.append(
            {
                "model": model,
                "api": api,
                "_day": day_,
                "priced_as": name or "",
                "unpriced": book.why_unpriced(model, api, day_) or "",
                "_input": price.input if price else 0.0,
                "_cached": (price.input if price.cached_input is None else price.cached_input)
                if price
                else 0.0,
                "_output": price.output if price else 0.0,
                "_reasoning": (price.output if price.reasoning is None else price.reasoning)
                if price
                else 0.0,
            }
        )
    columns = ["model", "api", "_day", "priced_as", "unpriced", "_input", "_cached", "_output", "_reasoning"]
    table = pd.DataFrame(rates, columns=columns)
    rows = rows.merge(table, on=["model", "api", "_day"], how="left", sort=False)
    rows.index = basis.index
    prompt, completion = rows["prompt_tokens"], rows["completion_tokens"]
    cached = rows["cached_tokens"].clip(lower=0).where(lambda c: c <= prompt, prompt)
    reasoning = rows["reasoning_tokens"].clip(lower=0).where(lambda r: r <= completion, completion)
    billable = prompt + completion
    # A priced model whose policy emits no prompt/completion split cannot be costed either.
    split_missing = (rows["unpriced"] == "") & (billable <= 0) & (rows["total_tokens"] > 0)
    rows.loc[split_missing, "unpriced"] = (
        rows.loc[split_missing, "priced_as"] + " (no prompt/completion tokens)"
    )
    is_priced = rows["unpriced"] == ""
    rows["cost_input"] = ((prompt - cached) * rows["_input"] / PER_TOKENS).where(is_priced, 0.0)
    rows["cost_cached_input"] = (cached * rows["_cached"] / PER_TOKENS).where(is_priced, 0.0)
    output = (completion - reasoning) * rows["_output"] + reasoning * rows["_reasoning"]
    rows["cost_output"] = (output / PER_TOKENS).where(is_priced, 0.0)
    rows["cost"] = rows["cost_input"] + rows["cost_cached_input"] + rows["cost_output"]
    rows["priced_tokens"] = billable.where(is_priced, 0.0)
    rows["unpriced_tokens"] = billable.where(billable > rows["total_tokens"], rows["total_tokens"]).where(
        ~is_priced, 0.0
    )
    return rows.drop(columns=["_day", "_input", "_cached", "_output", "_reasoning"])


def by_subscription(basis: pd.DataFrame) -> pd.DataFrame:
    """``cost_basis`` rows split by subscription (its default) with the series named so."""
    return basis.rename(columns={"series": "subscription"})


def summarise(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Priced rows added up by ``keys``: tokens, calls, costs and unpriced tokens.

    A group with unpriced tokens and nothing priced has no cost (NaN, an empty CSV cell), not 0.
    """
    measures = [
        c for c in (*TOKEN_COLUMNS, *COST_PARTS, "cost", "priced_tokens", "unpriced_tokens") if c in rows
    ]
    if not keys:
        out = rows[measures].sum().to_frame().T
    else:
        out = rows.groupby(keys, as_index=False, sort=True, dropna=False)[measures].sum()
    return without_false_zeros(out)


def without_false_zeros(frame: pd.DataFrame) -> pd.DataFrame:
    """Cost columns emptied where only unpriced tokens were summed (their 0 would be a lie)."""
    out = frame.copy()
    nothing_priced = (out["priced_tokens"] <= 0) & (out["unpriced_tokens"] > 0)
    for column in ("cost", *COST_PARTS):
        out[column] = out[column].astype("float64").mask(nothing_priced)
    return out


def unpriced_names(rows: pd.DataFrame) -> list[tuple[str, float]]:
    """What the unpriced tokens are, most tokens first: [("claude-sonnet-4", 1.2e6), ...]."""
    left = rows[rows["unpriced_tokens"] > 0]
    if left.empty:
        return []
    by_name = left.groupby("unpriced")["unpriced_tokens"].sum().sort_values(ascending=False, kind="stable")
    return [(str(name), float(tokens)) for name, tokens in by_name.items()]
