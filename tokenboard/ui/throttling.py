"""The Throttling page's sections on who refused calls, what clients did next, and the limit that fits.

Each section runs its queries, draws its charts and tables, and leaves the page script a line
(``page.section`` makes each a part of the page that loads at the same time as the others).
"""

from __future__ import annotations

import streamlit as st

from tokenboard import planning
from tokenboard.backends import Backend
from tokenboard.config import Settings
from tokenboard.ui import data, panels
from tokenboard.ui.sidebar import Filters
from tokenboard.views import causes, formats, retries
from tokenboard.views import planning as plan_views
from tokenboard.views.labels import DIMENSIONS, label


def causes_section(backend: Backend, f: Filters) -> None:
    st.subheader("Who refused: the gateway's limit, the deployment's, the quota, or something else")
    frame, bound = data.run_binned(backend, "limit_hit_causes", f, maxima=("backend_logged",))
    panels.metrics(causes.headlines(frame))
    for note in causes.notes(frame):
        st.info(note, icon=":material/info:")
    chart = causes.over_time(frame, f.axis)
    panels.chart(chart, key="causes-time", queries=bound, filename="limit_hit_causes_over_time")
    by = (
        st.segmented_control(
            "Causes by",
            ["subscription", "api"],
            format_func=lambda dimension: DIMENSIONS[dimension],
            default="subscription",
            required=True,
            key="causes_by",
            bind="query-params",
        )
        or "subscription"
    )
    st.caption(causes.BY_ORDER)
    panels.chart(causes.by(frame, by), key="causes-by", queries=bound, filename=f"limit_hit_causes_by_{by}")


def retries_section(backend: Backend, f: Filters) -> None:
    st.subheader("After a 429: do clients wait for Retry-After?")
    calls, bound = data.run(backend, "retry_calls", f.params())
    table = retries.table(calls)
    st.caption(
        "For each 429, the subscription's next call: early when it came before the 429's Retry-After had "
        "elapsed. A client backs off when at most 10% of its next calls came early. " + retries.ORDER
    )
    config = {
        **panels.numbers("throttled", "followed", "early_retries"),
        **panels.percents("early_retry_share"),
        **panels.numbers("median_gap_seconds", "median_retry_after_seconds", fmt="%.1f s"),
    }
    panels.table(table, key="retries", queries=[bound], filename="retry_behaviour", column_config=config)
    if table.empty:
        return
    raw = {label(s): s for s in calls["subscription"].unique()}
    choice = st.selectbox("Throttling episode of", list(table["subscription"]), key="episode")
    chart = retries.episode(calls, raw.get(choice, choice), f.tz)
    panels.chart(chart, key="retries-episode", queries=[bound], filename="throttling_episode")


def planning_section(backend: Backend, f: Filters, settings: Settings) -> None:
    st.subheader("Limit planning: tokens per minute against the limit, and what another limit would do")
    budget = st.select_slider(
        "Refusal budget (share of active minutes allowed over the suggested limit)",
        options=list(planning.BUDGETS),
        value=0.01,
        format_func=formats.percent,
        key="budget",
    )
    params = f.params(candidate=settings.limits.tokens_per_minute, refusal_budget=budget)
    frame, bound = data.run(backend, "limit_plan", params)
    table = planning.plan(frame, settings, settings.limits.tokens_per_minute, budget)
    if table.empty:
        st.info("No tokens in this range.", icon=":material/info:")
        return
    shown = ["subscription", "active_minutes", "p50_tokens_per_minute", "p95_tokens_per_minute",
             "p99_tokens_per_minute", "max_tokens_per_minute", "tokens_per_minute_limit",
             "suggested_limit"]  # fmt: skip
    config = panels.numbers(*shown[1:]) | {
        name: st.column_config.NumberColumn(title, format=formats.COLUMN_WHOLE)
        for name, title in (("p50_tokens_per_minute", "p50 / min"), ("p95_tokens_per_minute", "p95 / min"),
                            ("p99_tokens_per_minute", "p99 / min"), ("max_tokens_per_minute", "max / min"),
                            ("tokens_per_minute_limit", "limit"), ("suggested_limit", "suggested"))
    }  # fmt: skip
    st.caption(plan_views.ORDER)
    panels.table(
        table.assign(subscription=table["subscription"].map(label))[shown],
        key="plan", queries=[bound], filename="limit_plan", column_config=config,
    )  # fmt: skip
    sub = st.selectbox("What-if for", list(table["subscription"]), format_func=label, key="plan_subscription")
    row = table[table["subscription"] == sub].iloc[0]
    limit = int(row["tokens_per_minute_limit"])
    top = planning.round_up(max(row["max_tokens_per_minute"], limit) * 1.5)
    candidate = st.slider(
        "Candidate tokens-per-minute limit", min_value=planning.SUGGESTION_STEP, max_value=top,
        value=min(limit, top), step=planning.SUGGESTION_STEP, key=f"candidate-{sub}",
    )  # fmt: skip
    minute_tokens = ("peak_tokens_over_time", f.params(subscriptions=[sub], bin_size=planning.MINUTE))
    if candidate == settings.limits.tokens_per_minute:  # the plan's own what-if (rows per subscription)
        (minutes,), (minutes_bound,) = data.run_all(backend, minute_tokens)
        what, what_bound = frame[frame["subscription"] == sub], bound
    else:
        what_if = f.params(subscriptions=[sub], candidate=candidate, refusal_budget=budget)
        (what, minutes), (what_bound, minutes_bound) = data.run_all(
            backend, ("limit_plan", what_if), minute_tokens
        )
    row = planning.plan(what, settings, candidate, budget).iloc[0]
    panels.metrics(plan_views.what_if(row))
    chart = plan_views.curve(minutes, row)
    panels.chart(chart, key="plan-curve", queries=[what_bound, minutes_bound], filename="minute_tokens")
