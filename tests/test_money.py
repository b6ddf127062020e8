"""Prices and costs: the price table, the cost formula, and the reports' cost columns against
an independent pandas computation over the seeded rows (the Azure path: tests/azure)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from costcheck import PRICE_CHANGE, UNPRICED, assert_costs_match, expected_costs, money_settings

from tokenboard import money, reports
from tokenboard.backends.local import LocalBackend
from tokenboard.config import ConfigError, Settings
from tokenboard.settings import load_settings
from tokenboard.store import Store


def basis(**columns) -> pd.DataFrame:
    """One cost_basis row per entry of the lists given (defaults: zeros, 2025-03-01, chat)."""
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2025-03-01", tz="UTC"),
            "subscription": "team",
            "api": "chat",
            "model": "m",
            "total_tokens": 0.0,
            "prompt_tokens": 0.0,
            "cached_tokens": 0.0,
            "completion_tokens": 0.0,
            "reasoning_tokens": 0.0,
            "calls": 1,
        },
        index=range(n),
    )
    for name, values in columns.items():
        frame[name] = values
    if "total_tokens" not in columns:
        frame["total_tokens"] = frame["prompt_tokens"] + frame["completion_tokens"]
    return frame


def book(**settings) -> money.PriceBook:
    return money.PriceBook.of(Settings(**settings))


# --- the formula ------------------------------------------------------------------------


def test_cached_prompt_tokens_cost_the_cached_price_and_the_rest_the_input_price() -> None:
    prices = {"m": {"input": 2.0, "cached_input": 0.5, "output": 8.0}}
    rows = money.priced(
        basis(prompt_tokens=[1_000_000.0], cached_tokens=[400_000.0], completion_tokens=[250_000.0]),
        book(prices=prices, default_prices=False),
    )
    row = rows.iloc[0]
    assert row["cost_input"] == pytest.approx(600_000 * 2.0 / 1e6)
    assert row["cost_cached_input"] == pytest.approx(400_000 * 0.5 / 1e6)
    assert row["cost_output"] == pytest.approx(250_000 * 8.0 / 1e6)
    assert row["cost"] == pytest.approx(1.2 + 0.2 + 2.0)
    assert row["unpriced_tokens"] == 0


def test_reasoning_tokens_are_output_unless_the_model_prices_them() -> None:
    rows = basis(model=["a", "b"], completion_tokens=[1e6, 1e6], reasoning_tokens=[4e5, 4e5])
    prices = {"a": {"input": 1, "output": 4}, "b": {"input": 1, "output": 4, "reasoning": 10}}
    out = money.priced(rows, book(prices=prices, default_prices=False)).set_index("model")
    assert out.loc["a", "cost_output"] == pytest.approx(4.0)
    assert out.loc["b", "cost_output"] == pytest.approx(0.6 * 4 + 0.4 * 10)


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    out = money.priced(
        basis(prompt_tokens=[1e6], cached_tokens=[5e5]),
        book(prices={"m": {"input": 3, "output": 9}}, default_prices=False),
    )
    assert out["cost"].iloc[0] == pytest.approx(3.0)


def test_a_price_change_prices_each_day_at_its_own_rate() -> None:
    prices = {"m": [{"input": 1, "output": 1}, {"valid_from": "2025-03-02", "input": 3, "output": 3}]}
    days = pd.to_datetime(["2025-03-01", "2025-03-02", "2025-03-03"], utc=True)
    out = money.priced(
        basis(timestamp=days, prompt_tokens=[1e6] * 3), book(prices=prices, default_prices=False)
    )
    assert out["cost"].tolist() == pytest.approx([1.0, 3.0, 3.0])


def test_hourly_bins_take_their_day_s_price() -> None:
    prices = {"m": [{"input": 1, "output": 1}, {"valid_from": date(2025, 3, 2), "input": 3, "output": 3}]}
    hours = pd.to_datetime(["2025-03-01T23:00:00", "2025-03-02T00:00:00"], utc=True)
    out = money.priced(
        basis(timestamp=hours, prompt_tokens=[1e6] * 2), book(prices=prices, default_prices=False)
    )
    assert out["cost"].tolist() == pytest.approx([1.0, 3.0])


def test_unpriced_tokens_are_counted_and_named_never_costed_at_zero() -> None:
    rows = basis(
        model=["priced", "model-x", "", ""],
        api=["chat", "chat", "legacy", "chat"],
        prompt_tokens=[1e6, 7e5, 5e5, 1e5],
        completion_tokens=[0.0, 5e5, 0.0, 0.0],
    )
    priced = money.priced(
        rows, book(prices={"priced": {"input": 1, "output": 1}}, api_models={"chat": "priced"})
    )
    assert priced["unpriced"].tolist() == ["", "model-x", "legacy API (no model)", ""]
    assert priced["unpriced_tokens"].tolist() == [0, 1.2e6, 5e5, 0]
    assert money.unpriced_names(priced) == [("model-x", 1.2e6), ("legacy API (no model)", 5e5)]
    by_model = money.summarise(priced, ["model"]).set_index("model")
    assert pd.isna(by_model.loc["model-x", "cost"]), "a model without a price has no cost, not 0"
    assert by_model.loc["", "cost"] == pytest.approx(0.1), "priced through api_models; the rest unpriced"
    assert by_model.loc["", "unpriced_tokens"] == 5e5


def test_a_model_priced_only_from_a_later_day_says_so() -> None:
    prices = {"m": {"valid_from": "2025-03-05", "input": 1, "output": 1}}
    out = money.priced(basis(prompt_tokens=[1e6]), book(prices=prices, default_prices=False))
    assert out["unpriced"].iloc[0] == "m (no price before 2025-03-05)"


def test_names_resolve_through_aliases_and_regardless_of_case() -> None:
    b = book(model_aliases={"Prod-Mini": "GPT-4o-mini"})
    assert b.priced_as("prod-mini", "chat") == "GPT-4o-mini"
    assert b.price("GPT-4o-mini", date(2025, 3, 1)) == b.price("gpt-4o-mini", date(2025, 3, 1)) is not None


# --- the price table ----------------------------------------------------------------------


def test_the_shipped_list_says_where_and_when_its_prices_come_from() -> None:
    shipped = money.shipped()
    assert shipped.currency == "USD"
    assert shipped.as_of == "August 2025" and "Azure OpenAI" in shipped.source
    text = money.SHIPPED_FILE.read_text("utf-8")
    assert "list prices as of August 2025" in text and "azure.microsoft.com/pricing" in text
    demo_models = {
        "gpt-4o-mini",
        "gpt-4.1",
        "Phi-4-mini-instruct",
        "o4-mini",
        "gpt-5-mini",
        "text-embedding-3-small",
    }
    assert demo_models <= set(shipped.prices)
    assert "claude-sonnet-4" not in shipped.prices, "the demo's unpriced model"
    for model, periods in shipped.prices.items():
        assert len(periods) == 1 and periods[0].input >= 0 and periods[0].output >= 0, model


def test_configuration_overrides_the_shipped_list_model_by_model() -> None:
    b = book(prices={"GPT-4O-MINI": {"input": 0.2, "output": 0.8}})
    assert b.price("gpt-4o-mini", date(2025, 3, 1)).input == 0.2  # type: ignore[union-attr]
    assert b.price("gpt-4.1", date(2025, 3, 1)).input == money.shipped().prices["gpt-4.1"][0].input  # type: ignore[union-attr]
    assert book(default_prices=False).price("gpt-4.1", date(2025, 3, 1)) is None
    assert book(currency="EUR").price("gpt-4.1", date(2025, 3, 1)) is None, "USD list, EUR configured"


def test_prices_and_tables_come_from_toml_and_json_environment_variables() -> None:
    toml_like = {
        "currency": "EUR",
        "prices": {
            "o3": [{"input": 10, "output": 40}, {"valid_from": date(2025, 6, 10), "input": 2, "output": 8}]
        },
        "model_aliases": {"prod-o3": "o3"},
        "budgets": {"team-a": 500, "team-b": {"tokens": "40_000_000"}},
    }
    settings = load_settings(
        toml_like,
        environ={
            "TOKENBOARD_PRICES": '{"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}',
            "TOKENBOARD_API_MODELS": '{"chat": "gpt-4o"}',
        },
    )
    assert settings.currency == "EUR"
    assert list(settings.prices) == ["gpt-4o-mini"], "a table from the environment replaces the file's"
    assert settings.prices["gpt-4o-mini"][0].cached_input == 0.075
    from_file = load_settings(toml_like, environ={})
    assert [p.valid_from for p in from_file.prices["o3"]] == [None, date(2025, 6, 10)]
    assert [p.input for p in from_file.prices["o3"]] == [10, 2]
    assert settings.api_models == {"chat": "gpt-4o"}
    assert settings.model_aliases == {"prod-o3": "o3"}
    assert settings.budgets["team-a"].cost == 500 and settings.budgets["team-b"].tokens == 40_000_000
    assert Settings(**settings.model_dump()) == settings, "replace() keeps every price"


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"m": {"input": 1}}, "has no output price for 'm'"),
        ({"m": {"input": "lots", "output": 1}}, "input price for 'm' that is not a number"),
        ({"m": {"input": -1, "output": 1}}, "input price for 'm' that is not a number of 0 or more"),
        ({"m": {"inptu": 1, "output": 1}}, "unknown key 'inptu' in the price of 'm'"),
        ({"m": {"input": 1, "output": 1, "valid_from": "next week"}}, "not a date like 2025-06-01"),
        ({"m": [{"input": 1, "output": 1}, {"input": 2, "output": 2}]}, "two prices from the same day"),
        ({"m": 0.15}, "needs a table for 'm'"),
        ('{"m": ', "must be JSON"),
    ],
)
def test_a_bad_price_is_one_message_naming_the_key(prices, message) -> None:
    with pytest.raises(ConfigError, match="Configuration key 'prices'") as error:
        load_settings({"prices": prices}, environ={})
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ({"a": {"money": 5}}, "unknown key 'money' in the budget of 'a'"),
        ({"a": {}}, "gives 'a' no budget"),
        ({"a": 0}, "a budget of 0"),
        ({"a": "much"}, "cost price for 'a' that is not a number"),
    ],
)
def test_a_bad_budget_is_one_message_naming_the_key(budgets, message) -> None:
    with pytest.raises(ConfigError, match="Configuration key 'budgets'") as error:
        load_settings({"budgets": budgets}, environ={})
    assert message in str(error.value)


# --- reports against pandas (local backend) --------------------------------------------


@pytest.fixture(scope="module")
def priced_backend(demo_settings: Settings, seeded_store: Store) -> LocalBackend:
    return LocalBackend(money_settings(demo_settings), seeded_store)


def test_usage_pivot_cost_per_subscription_api_model_equals_pandas(
    priced_backend, demo_rows, demo_end
) -> None:
    start = demo_end - timedelta(days=3)
    table = reports.build_report("usage_pivot", priced_backend, {"start_time": start, "end_time": demo_end})
    keys = ["subscription", "api", "model"]
    want = expected_costs(demo_rows.metrics, priced_backend.settings, start, demo_end, keys)
    assert_costs_match(table, want, keys)
    assert (table["currency"] == "EUR").all()
    unpriced = table[table["unpriced_tokens"] > 0]
    assert set(unpriced["model"]) == UNPRICED and unpriced["cost"].isna().all()
    legacy = table[table["api"] == "completions-v1"]
    assert (legacy["cost"] > 0).all() and (legacy["unpriced_tokens"] == 0).all(), "priced through api_models"


def test_the_price_change_day_matters(priced_backend, demo_rows, demo_end) -> None:
    """The reference is not trivially equal: pricing every day at the old rate would differ."""
    start = demo_end - timedelta(days=3)
    table = reports.build_report("usage_pivot", priced_backend, {"start_time": start, "end_time": demo_end})
    mini = table[table["model"].isin(["gpt-4o-mini", "prod-4o-mini"])]
    old_rate = (
        (mini["prompt_tokens"] - mini["prompt_cached_tokens"]) * 0.15
        + mini["prompt_cached_tokens"] * 0.075
        + mini["completion_tokens"] * 0.60
    ) / 1e6
    assert (mini["cost"] > old_rate).all() and mini["cost"].sum() > 1.2 * old_rate.sum()
    assert start.date() < PRICE_CHANGE < demo_end.date()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_monthly_chargeback_cost_equals_pandas_and_adds_up(priced_backend, demo_rows, demo_end, tz) -> None:
    start = demo_end - timedelta(days=3)  # February and March, in every zone
    params = {"start_time": start, "end_time": demo_end}
    table = reports.build_report("monthly_usage", priced_backend, {**params, "time_zone": tz})
    keys = ["month", "subscription"]
    want = expected_costs(demo_rows.metrics, priced_backend.settings, start, demo_end, keys, tz)
    assert_costs_match(table, want, keys)
    assert set(table["calendar_month"]) == {"2025-02", "2025-03"}
    pivot = reports.build_report("usage_pivot", priced_backend, params)
    per_sub = pivot.groupby("subscription")[["cost", "unpriced_tokens"]].sum(min_count=1)
    months = table.groupby("subscription")[["cost", "unpriced_tokens"]].sum(min_count=1)
    pd.testing.assert_frame_equal(months, per_sub, atol=1e-5, check_exact=False)
