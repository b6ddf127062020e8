"""tokenboard: the entry point (sign-in, navigation by role) and the Overview page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from tokenboard import money
from tokenboard.safe import md
from tokenboard.ui import access, data, page, panels
from tokenboard.ui.settings import app_settings
from tokenboard.views import costs, formats, overview, usage
from tokenboard.views.overview import RequestTotals, UsageTotals

PAGES_DIR = Path(__file__).parent / "pages"
ICONS = {
    "1_Usage": ":material/stacked_bar_chart:",
    "2_Throttling": ":material/speed:",
    "3_Reports": ":material/summarize:",
    "4_Test_request": ":material/send:",
    "5_Budgets": ":material/savings:",
}
OPERATOR_PAGES = {"4_Test_request"}  # spends real tokens: only for operators


def overview_page() -> None:
    p = page.start("Overview", "📊", "Token usage and limit hits at a glance")
    f, settings, backend = p.filters, p.settings, p.backend
    totals = {"bin_size": costs.DAY, "split_by": "none"}  # costs per UTC day, API and model

    @page.section
    def headlines() -> None:
        frames, queries = data.run_all(
            backend,
            ("usage_pivot", f.params()),
            ("usage_pivot", f.previous_params()),
            ("request_totals", f.params()),
            ("request_totals", f.previous_params()),
            ("cost_basis", f.params(**totals)),
            ("cost_basis", f.previous_params(**totals)),
            ("data_coverage", f.coverage_params()),
        )
        pivot, pivot_before, requests, requests_before, basis, basis_before, coverage = frames
        now, before = UsageTotals.of(pivot, settings), UsageTotals.of(pivot_before, settings)
        hits, hits_before = RequestTotals.of(requests), RequestTotals.of(requests_before)
        if pivot.empty and hits.requests == 0:
            page.empty(f)
            return
        spend, spend_before = money.priced(basis, settings), money.priced(basis_before, settings)
        cost, unpriced = costs.headlines(
            spend, spend_before, settings.currency, f.period, f.coverage(coverage, "metrics_first")
        )
        panels.metrics(
            [cost, *overview.usage_headlines(now, before, f.period, f.coverage(coverage, "metrics_first"))]
        )
        panels.metrics(
            [
                unpriced,
                overview.limit_headline(hits, hits_before, f.period, f.coverage(coverage, "requests_first")),
                overview.busiest_headline(
                    "Busiest subscription", overview.busiest(pivot, "subscription", settings)
                ),
                overview.busiest_headline("Busiest API", overview.busiest(pivot, "api", settings)),
                overview.Headline(
                    "Requests",
                    formats.whole(hits.requests),
                    None,
                    "Gateway requests (App Insights `requests`)",
                ),
            ]
        )
        panels.details(
            overview.headline_table(now, before, hits, hits_before, costs.headline_rows(spend, spend_before)),
            queries,
            key="overview-headlines",
            filename="headline_numbers",
        )
        if named := costs.unpriced_text(spend):
            st.caption(f"Cost leaves out {md(named)}: give them a price in `[prices]` (see Configuration).")
        if now.other:
            listed = ", ".join(
                f"{md(name)} {formats.whole(value)}" for name, value in sorted(now.other.items())
            )
            st.caption(
                f"Also emitted: {listed}. "
                "These categories overlap prompt/completion and are not added to Total."
            )

    @page.section
    def tokens_over_time() -> None:
        series, series_q = data.run_binned(backend, "tokens_over_time", f, split_by="metric")
        chart = usage.tokens_over_time(series, "metric", settings, f.axis)
        chart.figure.update_layout(height=320)
        panels.chart(chart, key="overview-tokens", queries=series_q, filename="tokens_over_time")

    @page.section
    def top_subscriptions() -> None:
        pivot, pivot_q = data.run(backend, "usage_pivot", f.params())  # the headlines' query
        chart = usage.top_consumers(usage.consumers(pivot, settings), 5)
        panels.chart(chart, key="overview-top", queries=[pivot_q], filename="top_subscriptions")

    headlines()
    st.subheader("Tokens over time")
    tokens_over_time()
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Top subscriptions")
        st.caption(usage.TOP_ORDER)
        top_subscriptions()
    with right:
        st.subheader("Data source")
        with st.container(border=True):
            st.markdown(backend.describe())
            st.caption(
                f"Changes compare with the previous {f.period} when data covers most of it. "
                "Shaded bins are incomplete (cut by the range, or still ingesting); "
                "bins without data are zero."
            )


files = sorted(PAGES_DIR.glob("[0-9]*.py"))
read = [st.Page(overview_page, title="Overview", icon=":material/dashboard:", default=True)]
read += [st.Page(path, icon=ICONS.get(path.stem)) for path in files if path.stem not in OPERATOR_PAGES]
operate = [st.Page(path, icon=ICONS.get(path.stem)) for path in files if path.stem in OPERATOR_PAGES]
# A visitor without a role (signed out, not on an allow-list) gets one page whatever the URL,
# and the run stops there: no page script, no query.
visitor = access.admit(app_settings(), [p.url_path for p in read + operate if p.url_path])
navigation = st.navigation(read + operate if visitor.is_operator else read)
access.sidebar(visitor)
navigation.run()
