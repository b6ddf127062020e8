"""Budgets: each subscription's spend this month against its budget, and its token quota,
with a forecast to the end of the period and the day it runs out."""

from __future__ import annotations

import streamlit as st

from tokenboard import budgets, kql
from tokenboard.safe import md
from tokenboard.ui import data, page, panels
from tokenboard.views import budgets as view
from tokenboard.views import formats
from tokenboard.views.labels import label

p = page.start("Budgets", "💰", "Monthly budgets and token quotas: spent, forecast, when they run out")
f, settings, backend = p.filters, p.settings, p.backend
now = f.time_range.end  # "now", or the end a link pins
COLUMNS = {
    # Shares are shown as percent (panels.shown scales them); the CSV keeps them as 0..1.
    "Used": st.column_config.ProgressColumn(
        "Used",
        format=formats.COLUMN_PERCENT,
        min_value=0.0,
        max_value=100.0,
        help="Spent so far, as a share of the limit",
    ),
    "Forecast %": st.column_config.NumberColumn(
        "Forecast %",
        format=formats.COLUMN_PERCENT,
        help="The forecast at the end of the period, as a share of the limit",
    ),
    "Runs out": st.column_config.TextColumn("Runs out", help=f"In {f.tz}"),
    "Forecast": st.column_config.TextColumn("Forecast", help="Spent at the end of the period, as forecast"),
}


def burn_down(
    burns: list[budgets.BurnDown], period: budgets.Window, key: str, queries: list[kql.BoundQuery]
) -> None:
    """Headlines, the run-out table (soonest first), and the burn-down of one of them."""
    quota = key == "quota"
    panels.metrics(view.headlines(burns, period, f.tz, quota=quota))
    panels.table(
        view.shown(burns, f.tz),
        key=f"{key}-table",
        queries=queries,
        filename="token_quotas" if quota else "budgets",
        csv=budgets.table(burns),
        column_config=COLUMNS,
    )
    unpriced = [b for b in burns if b.unpriced_tokens]
    if unpriced:
        listed = ", ".join(f"{label(b.subscription)} {formats.compact(b.unpriced_tokens)}" for b in unpriced)
        st.caption(f"Money budgets leave out unpriced tokens: {md(listed)}. Price them in `[prices]`.")
    names = [f"{label(b.subscription)} · {b.unit}" for b in burns]
    picked = st.selectbox("Burn-down of", range(len(burns)), format_func=names.__getitem__, key=key)
    chart = view.chart(burns[picked or 0], f.tz)
    panels.chart(chart, key=f"{key}-chart", queries=queries, filename=f"burn_down_{key}")


st.caption(
    f"As of {now:%Y-%m-%d %H:%M} UTC. The sidebar's time range does not apply here: budgets run per "
    "calendar month and quotas per their period, in UTC. Forecast: the same weekday of the last "
    "four weeks (hours of the week for a daily quota), so quiet weekends stay quiet."
)


@page.section
def monthly_budgets() -> None:
    month = budgets.window(now)
    basis, basis_q = data.run(backend, "cost_basis", month.params(subscriptions=list(f.subscriptions)))
    burns = budgets.budget_burndowns(basis, settings, month, f.subscriptions)
    if not burns:
        st.info(
            "No budgets for these subscriptions. Give them one in `[budgets]` of "
            '`.streamlit/secrets.toml`: `"team-a" = { cost = 500 }` (money per month) or '
            "`{ tokens = 40_000_000 }`.",
            icon=":material/savings:",
        )
    else:
        burn_down(burns, month, "budget", [basis_q])


@page.section
def token_quota() -> None:
    if not budgets.has_quotas(settings):
        st.info(
            "No token quota configured. With `token-quota` in the `llm-token-limit` policy, set "
            "`token_quota` and `token_quota_period` in `[limits]` (per subscription: "
            "`token_quota_overrides` in `[gateway]`) to see when each subscription starts getting 403s.",
            icon=":material/block:",
        )
        return
    period = budgets.window(now, settings.limits.token_quota_period)
    series, series_q = data.run(
        backend,
        "tokens_over_time",
        period.params(split_by="subscription", subscriptions=list(f.subscriptions)),
    )
    quotas = budgets.quota_burndowns(series, settings, period, f.subscriptions)
    if not quotas:
        st.info("No subscription with a quota used tokens in this period.", icon=":material/info:")
    else:
        burn_down(quotas, period, "quota", [series_q])


st.subheader("Monthly budgets")
monthly_budgets()
st.subheader("Token quota")
token_quota()
