"""Costs on the Azure path: the reports' cost columns through the real SDK and the emulator
equal the independent pandas computation (tests/costcheck.py), as on the local backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from costcheck import UNPRICED, assert_costs_match, expected_costs, money_settings

from tokenboard import reports
from tokenboard.backends.azure import AzureBackend
from tokenboard.config import Settings


@pytest.fixture
def priced_azure(azure_settings: Settings, identity_env: None) -> AzureBackend:
    return AzureBackend(money_settings(azure_settings))


@pytest.mark.parametrize(
    ("report", "keys"),
    [("usage_pivot", ["subscription", "api", "model"]), ("monthly_usage", ["month", "subscription"])],
)
def test_report_costs_through_the_sdk_equal_pandas(priced_azure, emulator, demo_rows, demo_end, report, keys):
    start = demo_end - timedelta(days=3)
    table = reports.build_report(report, priced_azure, {"start_time": start, "end_time": demo_end})
    want = expected_costs(demo_rows.metrics, priced_azure.settings, start, demo_end, keys)
    assert_costs_match(table, want, keys)
    assert any("cached_tokens = sumif" in q.query for q in emulator.queries), "cost_basis ran on the emulator"
    if report == "usage_pivot":
        assert set(table.loc[table["unpriced_tokens"] > 0, "model"]) == UNPRICED
