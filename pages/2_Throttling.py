"""Throttling, for ops: who hits the token limit (429) or quota (403), when, and how close to it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tokenboard.ui import data, errors, page, panels
from tokenboard.ui.throttling import causes_section, planning_section, retries_section
from tokenboard.views import formats, overview, throttling
from tokenboard.views.labels import DIMENSIONS, label
from tokenboard.views.overview import RequestTotals

p = page.start(
    "Throttling",
    "🚦",
    "Limit hits (429 and 403 refusals) and headroom to the tokens-per-minute limit",
    links=throttling.LINKS,
)
f, settings, backend = p.filters, p.settings, p.backend

with errors.shown():
    totals, totals_q = data.run(backend, "request_totals", f.params())
    totals_before, totals_before_q = data.run(backend, "request_totals", f.previous_params())
    coverage, coverage_q = data.run(backend, "data_coverage", f.coverage_params())
    now, before = RequestTotals.of(totals), RequestTotals.of(totals_before)
    peaks, peaks_q = data.run(backend, "peak_minute_tokens", f.params())
    if now.requests == 0 and peaks.empty:
        page.empty(f, "gateway requests or tokens")
    hits, hits_q = data.run(backend, "limit_hits", f.params())

    covered = f.coverage(coverage, "requests_first")
    panels.metrics(
        [
            overview.limit_headline(now, before, f.period, covered),
            *throttling.rate_headlines(now, before, f.period, covered),
            throttling.throttled_headline(hits),
        ]
    )
    both = pd.concat(
        [totals.assign(period="current"), totals_before.assign(period="previous")], ignore_index=True
    )
    panels.details(
        both, [totals_q, totals_before_q, coverage_q], key="throttling-totals", filename="request_totals"
    )

    st.subheader("Limit-hit rate over time")
    over_time, over_time_q = data.run_binned(backend, "requests_over_time", f, split_by="none")
    chart = throttling.rates_over_time(over_time, f.axis)
    panels.chart(chart, key="throttling-rates", queries=over_time_q, filename="limit_hit_rate_over_time")

    causes_section(backend, f)

    st.subheader("Highest limit-hit rate")
    st.caption(throttling.RATES_ORDER)
    by = (
        st.segmented_control(
            "Group by",
            list(throttling.BY),
            format_func=DIMENSIONS.get,
            default="subscription",
            required=True,
            key="by",
            bind="query-params",
        )
        or "subscription"
    )
    panels.chart(
        throttling.rates_by(hits, by), key="throttling-by", queries=[hits_q], filename=f"limit_hits_by_{by}"
    )

    st.subheader("Worst subscriptions: most limit hits")
    st.caption(throttling.WORST_ORDER)
    worst = throttling.worst_subscriptions(hits)
    config = {
        **panels.numbers("hits", "rate_limited", "quota_exceeded", "requests"),
        **panels.percents("hit_rate"),
        **panels.times("first_hit", "last_hit", tz=f.tz),
    }
    panels.table(
        worst,
        key="throttling-worst",
        queries=[hits_q],
        filename="worst_subscriptions",
        tz=f.tz,
        column_config=config,
    )

    if not worst.empty:
        st.subheader("When they were throttled")
        by_sub, by_sub_q = data.run_binned(backend, "requests_over_time", f, split_by="subscription")
        chart = throttling.hits_timeline(by_sub, worst["subscription"].tolist(), f.axis)
        panels.chart(chart, key="throttling-when", queries=by_sub_q, filename="limit_hits_over_time")

    retries_section(backend, f)

    st.subheader("Headroom: busiest minute against the tokens-per-minute limit")
    st.caption(throttling.HEADROOM_ORDER)
    headroom = throttling.headroom(peaks, settings)
    panels.chart(headroom, key="throttling-headroom", queries=[peaks_q], filename="headroom")
    if not peaks.empty:
        linked = st.query_params.get("headroom") if "headroom" not in st.session_state else None
        ordered = list(
            dict.fromkeys([*throttling.closest_to_limit(peaks, settings), *filter(None, [linked])])
        )
        sub = st.selectbox("Subscription", ordered, format_func=label, key="headroom", bind="query-params")
        over, over_q = data.run_binned(backend, "peak_tokens_over_time", f, maxima=("peak_tokens",))
        chart = throttling.headroom_over_time(over, sub, settings, f.axis)
        panels.chart(chart, key="throttling-headroom-time", queries=over_q, filename="peak_tokens_over_time")

    planning_section(backend, f, settings)

    st.subheader("Throttled minutes")
    minutes, minutes_q = data.run(backend, "throttled_minutes", f.params())
    table = throttling.throttled_minutes(minutes, settings)
    st.caption(
        f"{formats.whole(len(table))} minutes with 429 or 403 answers (newest first, at most 2,000), "
        "with the tokens admitted in that minute."
    )
    config = {
        **panels.times("minute", tz=f.tz),
        **panels.numbers("rate_limited", "quota_exceeded", "tokens", "calls", "limit"),
        **panels.percents("share_of_limit"),
    }
    panels.table(
        table,
        key="throttling-minutes",
        queries=[minutes_q],
        filename="throttled_minutes",
        tz=f.tz,
        column_config=config,
    )
