"""Reports page and ``build_report``: stable columns, numbers against pandas, the CSV download."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from pagetools import between, csv_frame, download, metrics_with_dims, requests_with_dims

from tokenboard import kql, reports
from tokenboard.export import to_csv

DAY = timedelta(hours=24)


def test_download_is_exactly_build_report(open_page, downloads, seeded_backend, demo_end):
    at = open_page("reports", report="Throttling summary")
    content = download(at, downloads, f"throttling_summary_{demo_end - DAY:%Y%m%d}-{demo_end:%Y%m%d}.csv")
    expected = reports.build_report(
        "throttling_summary", seeded_backend, {"start_time": demo_end - DAY, "end_time": demo_end}
    )
    assert content == to_csv(expected)
    assert content.decode("utf-8").splitlines()[0] == ",".join(
        c for c, _ in reports.THROTTLING_SUMMARY_COLUMNS
    )


@pytest.mark.parametrize("name", list(reports.REPORTS))
def test_every_report_previews_from_the_url(open_page, name):
    report = reports.REPORTS[name]
    at = open_page("reports", report=report.title, range="7d")
    preview = at.dataframe[0].value
    documented = [c for c, _ in report.columns]
    # Columns with one value in every row are said once, above the table, not repeated.
    once = [c for c in documented if c not in preview.columns]
    assert list(preview.columns[: len(documented) - len(once)]) == [c for c in documented if c not in once]
    if once:
        caption = next(c.value for c in at.caption if c.value.startswith("In every row:"))
        assert all(f"{c} " in caption for c in once)
    assert len(preview) > 0
    assert not (preview.astype(str) == "None").any(axis=None)  # empty cells are empty, not "None"


def test_filters_apply_to_the_report(open_page, downloads, demo_end):
    at = open_page("reports", sub=["fabrikam-prod"], api=["chat"])
    name = f"usage_pivot_{demo_end - DAY:%Y%m%d}-{demo_end:%Y%m%d}.csv"
    csv = csv_frame(download(at, downloads, name))
    assert set(csv["subscription"]) == {"fabrikam-prod"} and set(csv["api"]) == {"chat"}
    assert any("--param 'subscriptions=[\"fabrikam-prod\"]'" in c.value for c in at.code)


def test_usage_pivot_report_equals_pandas(seeded_backend, demo_rows, demo_settings, demo_end):
    start = demo_end - timedelta(days=2)
    table = reports.build_report("usage_pivot", seeded_backend, {"start_time": start, "end_time": demo_end})
    rows = metrics_with_dims(between(demo_rows.metrics, start, demo_end), demo_settings)
    wide = rows.pivot_table(
        index=["subscription", "api", "model"],
        columns="name",
        values="valueSum",
        aggfunc="sum",
        fill_value=0.0,
    )
    got = table.set_index(["subscription", "api", "model"])
    assert len(got) == len(wide)
    for key, row in wide.iterrows():
        assert got.loc[key, "total_tokens"] == row["Total Tokens"]
        assert got.loc[key, "prompt_tokens"] == row["Prompt Tokens"]
        assert got.loc[key, "prompt_cached_tokens"] == row.get("Prompt Cached Tokens", 0.0)
    assert table["share_of_total_tokens"].sum() == pytest.approx(1.0)
    assert table["total_tokens"].is_monotonic_decreasing


def test_monthly_usage_splits_at_the_month_and_clips_the_period(
    seeded_backend, demo_rows, demo_settings, demo_end
):
    start = demo_end - timedelta(days=3)  # the demo crosses February -> March
    table = reports.build_report("monthly_usage", seeded_backend, {"start_time": start, "end_time": demo_end})
    documented = [c for c, _ in reports.MONTHLY_USAGE_COLUMNS]
    assert list(table.columns[: len(documented)]) == documented
    march = table[table["month"] == pd.Timestamp("2025-03-01", tz="UTC")]
    february = table[table["month"] == pd.Timestamp("2025-02-01", tz="UTC")]
    assert (february["period_start"] == pd.Timestamp(start)).all()
    assert (february["period_end"] == pd.Timestamp("2025-03-01", tz="UTC")).all()
    assert (march["period_end"] == pd.Timestamp(demo_end)).all()
    rows = metrics_with_dims(
        between(demo_rows.metrics, pd.Timestamp("2025-03-01", tz="UTC"), demo_end), demo_settings
    )
    total = rows[rows["name"] == "Total Tokens"].groupby("subscription")["valueSum"].sum()
    assert march.set_index("subscription")["total_tokens"].to_dict() == pytest.approx(total.to_dict())


def test_throttling_summary_counts_hits_per_subscription(seeded_backend, demo_rows, demo_settings, demo_end):
    table = reports.build_report(
        "throttling_summary", seeded_backend, {"start_time": demo_end - DAY, "end_time": demo_end}
    )
    rows = requests_with_dims(between(demo_rows.requests, demo_end - DAY, demo_end), demo_settings)
    got = table.set_index("subscription")
    for sub, group in rows.groupby("subscription"):
        assert got.loc[sub, "requests"] == group["itemCount"].sum()
        assert got.loc[sub, "rate_limited_429"] == group.loc[group["resultCode"] == "429", "itemCount"].sum()
        assert (
            got.loc[sub, "quota_exceeded_403"] == group.loc[group["resultCode"] == "403", "itemCount"].sum()
        )
    assert (got["tokens_per_minute_limit"] == demo_settings.limits.tokens_per_minute).all()


def test_cli_style_text_parameters_work(seeded_backend, demo_end):
    table = reports.build_report(
        "usage_pivot",
        seeded_backend,
        {"start_time": "2025-03-02T14:07:00Z", "end_time": "2025-03-03T14:07:00Z", "apis": "chat,responses"},
    )
    assert set(table["api"]) == {"chat", "responses"}
    assert (table["period_end"] == pd.Timestamp(demo_end)).all()


def test_unknown_report_or_parameter_is_a_clear_error(seeded_backend):
    with pytest.raises(kql.QueryError, match="unknown report 'nope'"):
        reports.build_report("nope", seeded_backend, {})
    with pytest.raises(kql.QueryError, match="has no parameter 'models'"):
        reports.build_report("throttling_summary", seeded_backend, {"models": ["gpt-4.1"]})


def test_empty_report_keeps_its_columns(seeded_backend):
    start = datetime.fromisoformat("2019-01-01T00:00:00+00:00")
    for name, report in reports.REPORTS.items():
        table = reports.build_report(name, seeded_backend, {"start_time": start, "end_time": start + DAY})
        assert list(table.columns) == [c for c, _ in report.columns]
        assert to_csv(table).decode().strip() == ",".join(c for c, _ in report.columns)


def test_daily_report_follows_the_sidebar_time_zone(open_page, downloads, demo_end):
    at = open_page("reports", report="Daily usage", tz="Asia/Kolkata")
    assert any("--param time_zone=Asia/Kolkata" in c.value for c in at.code)
    assert any("Days and months start at midnight in Asia/Kolkata" in c.value for c in at.caption)
    name = f"daily_usage_{demo_end - DAY:%Y%m%d}-{demo_end:%Y%m%d}.csv"
    csv = csv_frame(download(at, downloads, name))
    # 24 h ending 19:37 in Kolkata (14:07 UTC) touch two local days.
    assert set(csv["day"]) == {"2025-03-02", "2025-03-03"} and set(csv["time_zone"]) == {"Asia/Kolkata"}
