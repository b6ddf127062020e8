"""Reports: pick one, preview it, download it as CSV (the same tables the CLI writes)."""

from __future__ import annotations

import json
import shlex

import streamlit as st

from tokenboard import reports
from tokenboard.export import to_csv
from tokenboard.ui import data, page, panels
from tokenboard.views import formats
from tokenboard.views.timerange import format_instant

PREVIEW_ROWS = 1000

p = page.start("Reports", "🧾", "Tables for chargeback and reviews, as CSV", links=reports.LINKS)
f, settings, backend = p.filters, p.settings, p.backend

name = st.selectbox(
    "Report",
    list(reports.REPORTS),
    format_func=lambda n: reports.REPORTS[n].title,
    key="report",
    bind="query-params",
)
report = reports.REPORTS[name]
st.markdown(report.description)


@page.section
def preview() -> None:
    params = {k: v for k, v in f.params(time_zone=f.tz).items() if k in report.params and v != []}
    if f.models and "models" not in report.params:
        st.caption("The model filter does not apply to this report (gateway requests carry no model).")
    if reports.TIME_ZONE in report.params:
        st.caption(f"Days and months start at midnight in {f.tz} (the sidebar's time zone).")
    bound = reports.bind_report(report, backend, params)
    results = data.run_bound_all(backend, bound.queries)
    table = reports.assemble(bound, [r.frame for r in results], settings)
    if table.empty:
        page.empty(f, "data for this report")
        return

    csv = to_csv(table)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.markdown(
        f"**{formats.whole(len(table))} rows** · {len(table.columns)} columns · {len(csv) / 1024:,.1f} KiB"
    )
    right.download_button(
        "Download CSV",
        csv,
        file_name=f"{name}_{f.time_range.start:%Y%m%d}-{f.time_range.end:%Y%m%d}.csv",
        mime="text/csv",
        icon=":material/download:",
        type="primary",
        key="report-csv",
        on_click="ignore",
        width="stretch",
    )
    panels.report_preview(table.head(PREVIEW_ROWS), f.tz, settings.currency, key="report-preview")
    if len(table) > PREVIEW_ROWS:
        st.caption(
            f"Showing the first {formats.whole(PREVIEW_ROWS)} rows; "
            f"the CSV holds all {formats.whole(len(table))}."
        )

    with st.expander("Columns", icon=":material/view_column:"):
        st.table({"column": [c for c, _ in report.columns], "meaning": [m for _, m in report.columns]})
        st.caption(reports.EXTRA_COLUMNS_NOTE)
    with st.expander("KQL and command line", icon=":material/terminal:"):
        args = ["python", "-m", "tokenboard", "report", name]
        for key, value in params.items():
            if key.endswith("_time"):
                text = format_instant(value)
            else:
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            args += ["--param", f"{key}={text}"]
        st.caption("The same table from a script or cron job (times in UTC):")
        st.code(shlex.join(args) + f" > {name}.csv", language="bash", wrap_lines=True)
        for b in bound.queries:
            st.caption(f"`{b.name}`")
            st.code(b.text, language="sql", wrap_lines=True)


preview()
