"""Throttling, for ops: who hits the token limit (429) or quota (403), when, and how close to it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tokenboard.ui import data, page, panels
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


@page.section
def headlines() -> None:
    (totals, totals_before, coverage, peaks, hits), queries = data.run_all(
        backend,
        ("request_totals", f.params()),
        ("request_totals", f.previous_params()),
        ("data_coverage", f.coverage_params()),
        ("peak_minute_tokens", f.params()),
        ("limit_hits", f.params()),
    )
    now, before = RequestTotals.of(totals), RequestTotals.of(totals_before)
    if now.requests == 0 and peaks.empty:
        page.empty(f, "gateway requests or tokens")
        return
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
    panels.details(both, queries[:3], key="throttling-totals", filename="request_totals")


@page.section
def rates_over_time() -> None:
    # The per-subscription series summed (the "When they were throttled" queries): no query of its own.
    over_time, over_time_q = data.run_binned(backend, "requests_over_time", f, split_by="subscription")
    chart = throttling.rates_over_time(over_time, f.axis)
    panels.chart(chart, key="throttling-rates", queries=over_time_q, filename="limit_hit_rate_over_time")


@page.section
def rates_by() -> None:
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
    hits, hits_q = data.run(backend, "limit_hits", f.params())
    panels.chart(
        throttling.rates_by(hits, by), key="throttling-by", queries=[hits_q], filename=f"limit_hits_by_{by}"
    )


@page.section
def worst() -> None:
    # The timeline's queries go with the table's, so the section waits for one round trip.
    (hits, *pieces), (hits_q, *pieces_q) = data.run_all(
        backend,
        ("limit_hits", f.params()),
        *data.pieces("requests_over_time", f, split_by="subscription"),
    )
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
    if worst.empty:
        return
    st.subheader("When they were throttled")
    chart = throttling.hits_timeline(data.regroup(f, pieces), worst["subscription"].tolist(), f.axis)
    panels.chart(chart, key="throttling-when", queries=pieces_q, filename="limit_hits_over_time")


@page.section
def headroom() -> None:
    (peaks, *pieces), (peaks_q, *pieces_q) = data.run_all(
        backend, ("peak_minute_tokens", f.params()), *data.pieces("peak_tokens_over_time", f)
    )
    chart = throttling.headroom(peaks, settings)
    panels.chart(chart, key="throttling-headroom", queries=[peaks_q], filename="headroom")
    if peaks.empty:
        return
    linked = st.query_params.get("headroom") if "headroom" not in st.session_state else None
    ordered = list(dict.fromkeys([*throttling.closest_to_limit(peaks, settings), *filter(None, [linked])]))
    sub = st.selectbox("Subscription", ordered, format_func=label, key="headroom", bind="query-params")
    over = data.regroup(f, pieces, maxima=("peak_tokens",))
    chart = throttling.headroom_over_time(over, sub, settings, f.axis)
    panels.chart(chart, key="throttling-headroom-time", queries=pieces_q, filename="peak_tokens_over_time")


@page.section
def throttled_minutes() -> None:
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


# The page's parts in page order: (heading, what it is sorted by, section, its arguments).
PARTS = [
    ("", "", headlines, ()),
    ("Limit-hit rate over time", "", rates_over_time, ()),
    ("", "", page.section(causes_section), (backend, f)),
    ("Highest limit-hit rate", throttling.RATES_ORDER, rates_by, ()),
    ("Worst subscriptions: most limit hits", throttling.WORST_ORDER, worst, ()),
    ("", "", page.section(retries_section), (backend, f)),
    ("Headroom: busiest minute against the tokens-per-minute limit", throttling.HEADROOM_ORDER, headroom, ()),
    ("", "", page.section(planning_section), (backend, f, settings)),
    ("Throttled minutes", "", throttled_minutes, ()),
]
PLANNING = 7
places = [st.container() for _ in PARTS]
# Each part starts in its place; limit planning first, as its what-if waits for the plan.
for index in (PLANNING, *(i for i in range(len(PARTS)) if i != PLANNING)):
    heading, order, draw, args = PARTS[index]
    with places[index]:
        if heading:
            st.subheader(heading)
        if order:
            st.caption(order)
        draw(*args)
