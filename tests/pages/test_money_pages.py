"""Money where users see it: the Overview's cost headline, Usage's cost pivot, cost over time and
cost per 1K calls, the Reports' cost columns, and the Budgets page; numbers against pandas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from costcheck import expected_costs, money_environment, money_settings
from pagetools import between, csv_frame, download, metrics_with_dims, shown
from streamlit.testing.v1 import AppTest

from tokenboard import budgets, forecast, reports
from tokenboard.backends.local import LocalBackend
from tokenboard.export import to_csv
from tokenboard.views.formats import compact, money, percent

DAY = timedelta(hours=24)
MARCH = datetime(2025, 3, 1, tzinfo=UTC)


def metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def captions(at: AppTest) -> str:
    """Every caption as the user reads it (Markdown escapes removed)."""
    return "\n".join(shown(c.value) for c in at.caption)


@pytest.fixture
def priced(app_env, monkeypatch):
    """The app configured with costcheck's prices (EUR, a price change on 2 March, aliases)."""
    for name, value in money_environment().items():
        monkeypatch.setenv(name, value)
    return money_settings(app_env)


def window_costs(demo_rows, settings, start, end, keys):
    return expected_costs(demo_rows.metrics, settings, start, end, keys)


# --- Overview -----------------------------------------------------------------------------


def test_overview_cost_headline_equals_pandas_with_its_change(priced, open_page, demo_rows, demo_end):
    at = open_page("overview")
    now = window_costs(demo_rows, priced, demo_end - DAY, demo_end, ["subscription"])
    before = window_costs(demo_rows, priced, demo_end - 2 * DAY, demo_end - DAY, ["subscription"])
    cost, cost_before = now["cost"].sum(), before["cost"].sum()
    headline = metric(at, "Cost")
    assert shown(headline.value) == money(cost, "EUR") and headline.value.startswith("€")
    assert headline.delta == f"{(cost - cost_before) / cost_before:+.1%}"
    unpriced, priced_tokens = now["unpriced_tokens"].sum(), now["priced_tokens"].sum()
    assert shown(metric(at, "Unpriced tokens").value) == percent(unpriced / (unpriced + priced_tokens))
    text = captions(at)
    assert f"{compact(unpriced)} tokens unpriced" in text
    assert "claude-sonnet-4" in text and "Phi-4-mini-instruct" in text
    assert "completions-v1" not in text, "priced through api_models"


def test_overview_headline_csv_holds_the_cost(priced, open_page, downloads, demo_rows, demo_end):
    at = open_page("overview")
    table = csv_frame(download(at, downloads, "headline_numbers.csv")).set_index("measure")
    now = window_costs(demo_rows, priced, demo_end - DAY, demo_end, ["subscription"])
    assert float(table.loc["cost", "current"]) == pytest.approx(now["cost"].sum(), abs=1e-9)
    assert float(table.loc["unpriced_tokens", "current"]) == now["unpriced_tokens"].sum()


def test_on_the_demo_defaults_the_alias_is_priced_and_the_rest_named(open_page):
    """First start: shipped prices, the demo's deployment alias, one unpriced model, one legacy API."""
    at = open_page("overview")
    assert shown(metric(at, "Cost").value).startswith("$")
    text = captions(at)
    assert "tokens unpriced: completions-v1 API (no model), claude-sonnet-4" in text
    assert "prod-4o-mini" not in text


# --- Usage --------------------------------------------------------------------------------


def test_cost_pivot_cells_equal_pandas_and_unpriced_cells_are_empty(priced, open_page, demo_rows, demo_end):
    at = open_page("usage", measure="Cost")
    table = at.dataframe[0].value
    want = window_costs(demo_rows, priced, demo_end - DAY, demo_end, ["subscription", "api"])
    for row in want.itertuples():
        cell = table.loc[row.subscription or "(none)", row.api]
        if pd.isna(row.cost):
            assert pd.isna(cell), (row.subscription, row.api)
        else:
            assert cell == pytest.approx(row.cost, abs=1e-9), (row.subscription, row.api)
    assert table.loc["Total", "Total"] == pytest.approx(want["cost"].sum(), abs=1e-9)
    assert any("not $0" in c.value for c in at.caption)


def test_cost_per_subscription_and_per_thousand_calls(priced, open_page, demo_rows, demo_settings, demo_end):
    at = open_page("usage")
    table = at.dataframe[-1].value.set_index("subscription")
    want = window_costs(demo_rows, priced, demo_end - DAY, demo_end, ["subscription"]).set_index(
        "subscription"
    )
    for sub, row in want.iterrows():
        label = sub or "(none)"
        assert table.loc[label, "unpriced_tokens"] == row["unpriced_tokens"]
        if pd.notna(row["cost"]):
            assert table.loc[label, "cost"] == pytest.approx(row["cost"], abs=1e-9)
    rows = metrics_with_dims(between(demo_rows.metrics, demo_end - DAY, demo_end), demo_settings)
    calls = rows[(rows["subscription"] == "fabrikam-prod") & (rows["name"] == "Total Tokens")][
        "valueCount"
    ].sum()
    assert table.loc["fabrikam-prod", "cost_per_1k_calls"] == pytest.approx(
        want.loc["fabrikam-prod", "cost"] / calls * 1000
    )
    assert list(table["cost"].dropna()) == sorted(table["cost"].dropna(), reverse=True)


@pytest.mark.parametrize(("split", "label"), [("part", "Price"), ("subscription", "Subscription")])
def test_cost_over_time_csv_adds_up_to_the_cost(
    priced, open_page, downloads, demo_rows, demo_end, split, label
):
    at = open_page("usage", cost_split=label)
    csv = csv_frame(download(at, downloads, f"cost_over_time_by_{split}.csv"))
    want = window_costs(demo_rows, priced, demo_end - DAY, demo_end, ["subscription"])
    assert csv["cost"].astype(float).sum() == pytest.approx(want["cost"].sum(), abs=1e-9)
    if split == "part":
        assert set(csv["series"]) == {"Input", "Cached input", "Output"}


# --- Reports ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["usage_pivot", "monthly_usage"])
def test_report_download_appends_the_cost_columns(priced, open_page, downloads, seeded_store, demo_end, name):
    report = reports.REPORTS[name]
    at = open_page("reports", report=report.title, range="7d")
    start = demo_end - timedelta(days=7)
    content = download(at, downloads, f"{name}_{start:%Y%m%d}-{demo_end:%Y%m%d}.csv")
    backend = LocalBackend(priced, seeded_store)
    assert content == to_csv(reports.build_report(name, backend, {"start_time": start, "end_time": demo_end}))
    header = content.decode("utf-8").splitlines()[0].split(",")
    before = 10 if name == "usage_pivot" else 8  # the columns of earlier versions come first, unchanged
    documented = [c for c, _ in report.columns]
    assert header[: len(documented)] == documented
    assert documented[before : before + 6] == [
        "cost",
        "cost_input",
        "cost_cached_input",
        "cost_output",
        "unpriced_tokens",
        "currency",
    ]
    if name == "monthly_usage":  # then the local calendar month and its time zone
        assert documented[before + 6 :] == ["calendar_month", "time_zone"]


# --- Budgets ------------------------------------------------------------------------------

BUDGETS = {
    "fabrikam-prod": {"cost": 1.0},  # spent already
    "contoso-prod": {"cost": 40.0},
    "woodgrove-bank-prod": {"tokens": 30_000_000},
    "litware-research": {"cost": 10_000},  # far from it
}


@pytest.fixture
def budgeted(priced, monkeypatch):
    monkeypatch.setenv("TOKENBOARD_BUDGETS", json.dumps(BUDGETS))
    return priced


def test_budgets_spent_this_month_equal_pandas_sorted_by_when_they_run_out(
    budgeted, open_page, downloads, demo_rows, demo_settings, demo_end
):
    at = open_page("budgets")
    csv = csv_frame(download(at, downloads, "budgets.csv"))
    assert list(csv["subscription"]) == [
        b.subscription for b in _reference_burns(budgeted, demo_rows, demo_end)
    ]
    got = csv.set_index("subscription")
    month = window_costs(demo_rows, budgeted, MARCH, demo_end, ["subscription"]).set_index("subscription")
    for sub in ("fabrikam-prod", "contoso-prod", "litware-research"):
        assert float(got.loc[sub, "spent"]) == pytest.approx(month.loc[sub, "cost"], abs=1e-9)
        assert got.loc[sub, "unit"] == "EUR"
    rows = metrics_with_dims(between(demo_rows.metrics, MARCH, demo_end), demo_settings)
    woodgrove = rows[(rows["subscription"] == "woodgrove-bank-prod") & (rows["name"] == "Total Tokens")]
    assert float(got.loc["woodgrove-bank-prod", "spent"]) == woodgrove["valueSum"].sum()
    assert got.loc["fabrikam-prod", "status"] == "over budget"
    assert (
        got.loc["litware-research", "status"] == "within budget"
        and got.loc["litware-research", "runs_out"] == ""
    )
    table = at.dataframe[0].value
    assert list(table["Subscription"]) == list(csv["subscription"])
    assert table.loc[0, "Status"] == "over budget"
    assert shown(metric(at, "Over budget").value) == "1 of 4"
    assert shown(metric(at, "First to run out").value) == "fabrikam-prod"
    assert at.get("plotly_chart"), "the burn-down of the first to run out"


def _reference_burns(settings, demo_rows, demo_end):
    """Outlooks from pandas daily sums (not the page's query), ranked by when they run out."""
    history = demo_end.replace(hour=0, minute=0) - timedelta(days=28)
    daily = window_costs(demo_rows, settings, history, demo_end, ["subscription", "day"])
    tokens = metrics_with_dims(between(demo_rows.metrics, history, demo_end), settings)
    tokens = tokens[tokens["name"] == "Total Tokens"]
    tokens = (
        tokens.assign(day=tokens["timestamp"].dt.floor("D"))
        .groupby(["subscription", "day"])["valueSum"]
        .sum()
    )
    burns = []
    for sub, budget in BUDGETS.items():
        if "cost" in budget:
            amounts = daily[daily["subscription"] == sub].set_index("day")["cost"].fillna(0.0)
            limit, unit = budget["cost"], "EUR"
        else:
            amounts, limit, unit = tokens.loc[sub], budget["tokens"], "tokens"
        outlook = forecast.outlook(
            amounts, MARCH, datetime(2025, 4, 1, tzinfo=UTC), demo_end, forecast.DAYS, limit
        )
        burns.append(budgets.BurnDown(sub, unit, False, outlook))
    return budgets.ranked(burns)


def test_budget_run_out_dates_match_a_forecast_from_pandas_sums(
    budgeted, open_page, downloads, demo_rows, demo_end
):
    at = open_page("budgets")
    csv = csv_frame(download(at, downloads, "budgets.csv")).set_index("subscription")
    for burn in _reference_burns(budgeted, demo_rows, demo_end):
        row = csv.loc[burn.subscription]
        assert float(row["forecast"]) == pytest.approx(burn.outlook.projected, rel=1e-9)
        if burn.outlook.crossing is None:
            assert row["runs_out"] == ""
        else:
            assert pd.Timestamp(row["runs_out"]) == pd.Timestamp(burn.outlook.crossing).floor("ms")


def test_token_quota_shows_who_gets_403s_today(
    app_env, monkeypatch, open_page, downloads, demo_rows, demo_end
):
    monkeypatch.setenv("TOKENBOARD_LIMITS__TOKEN_QUOTA", "2000000")
    monkeypatch.setenv("TOKENBOARD_LIMITS__TOKEN_QUOTA_PERIOD", "Daily")
    at = open_page("budgets")
    csv = csv_frame(download(at, downloads, "token_quotas.csv")).set_index("subscription")
    today = demo_end.replace(hour=0, minute=0)
    rows = metrics_with_dims(between(demo_rows.metrics, today, demo_end), app_env)
    spent = rows[rows["name"] == "Total Tokens"].groupby("subscription")["valueSum"].sum()
    for sub, tokens in spent.drop("", errors="ignore").items():
        assert float(csv.loc[sub, "spent"]) == tokens
        if tokens >= 2_000_000:
            assert csv.loc[sub, "status"] == "quota spent: 403s"
    assert "" not in csv.index, "anonymous traffic has no subscription to hold a quota"
    assert (csv["limit"].astype(float) == 2_000_000).all()
    assert shown(metric(at, "Quota spent").value).endswith(f"of {len(csv)}")


def test_no_budgets_and_no_quota_say_how_to_set_them(app_env, monkeypatch, open_page):
    monkeypatch.setenv("TOKENBOARD_BUDGETS", "{}")
    at = open_page("budgets")
    text = " ".join(i.value for i in at.info)
    assert "[budgets]" in text and "token_quota" in text
    assert not at.dataframe


def test_the_demo_budgets_show_on_first_start(open_page, downloads):
    at = open_page("budgets")
    csv = csv_frame(download(at, downloads, "budgets.csv"))
    assert len(csv) == 8
    assert set(csv["unit"]) == {"USD", "tokens"}
    assert set(csv["status"]) <= {"over budget", "runs out", "within budget"}
