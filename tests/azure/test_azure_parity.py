"""Every query file gives the same frame locally and through the real SDK against the emulator."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from la_emulator import LogAnalyticsEmulator

from tokenboard import kql
from tokenboard.backends import make_backend
from tokenboard.backends.azure import AzureBackend
from tokenboard.backends.local import LocalBackend
from tokenboard.config import Settings

QUERY_NAMES = sorted(kql.catalog())  # a new query file is covered without touching this test


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_gives_equal_frames_on_local_and_azure(
    name: str,
    seeded_backend: LocalBackend,
    azure_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    demo_end: datetime,
) -> None:
    bound = seeded_backend.bind(name, now=demo_end)
    assert azure_backend.bind(name, now=demo_end).text == bound.text  # same prelude, same text

    local = seeded_backend.run_query(bound)
    remote = azure_backend.run_query(bound)

    assert len(local.frame) > 0, f"{name} returns nothing on the demo data: the comparison would be empty"
    pd.testing.assert_frame_equal(local.frame, remote.frame)
    assert remote.warnings == ()
    sent = emulator.queries[-1]
    assert sent.path == f"/v1{emulator.resource_id}/query"
    assert sent.query == bound.text
    assert sent.rows == len(remote.frame)


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_gives_equal_frames_through_a_workspace(
    name: str,
    seeded_backend: LocalBackend,
    workspace_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    demo_end: datetime,
) -> None:
    local = seeded_backend.run_query(seeded_backend.bind(name, now=demo_end)).frame
    bound = workspace_backend.bind(name, now=demo_end)
    assert "AppMetrics" in bound.text and "customMetrics" not in bound.text

    remote = workspace_backend.run_query(bound).frame

    pd.testing.assert_frame_equal(local, remote)
    assert emulator.queries[-1].path == f"/v1/workspaces/{emulator.workspace_id}/query"


def test_workspace_id_selects_the_workspace_prelude(workspace_backend: AzureBackend) -> None:
    assert workspace_backend.prelude == kql.PRELUDES["workspace"]


def test_resource_id_wins_over_workspace_id(azure_settings: Settings, identity_env: None) -> None:
    backend = AzureBackend(azure_settings.replace(workspace_id="not-used"))
    assert backend.prelude == kql.PRELUDES["app_insights"]
    assert backend.workspace_id == ""


def test_make_backend_builds_the_azure_backend(azure_settings: Settings, identity_env: None) -> None:
    backend = make_backend(azure_settings)
    assert isinstance(backend, AzureBackend)
    assert "appi-gateway" in backend.description and "rg-gateway" in backend.description


@pytest.mark.parametrize(
    "subscriptions",
    [
        ["contoso-prod"],
        ['quote " and \\ backslash', "ünïcødé 租户 🚀", ""],
        ["line\nbreak | take 1"],
    ],
)
def test_filters_with_odd_values_agree(
    subscriptions: list[str],
    seeded_backend: LocalBackend,
    azure_backend: AzureBackend,
    demo_end: datetime,
) -> None:
    for name in ("usage_pivot", "limit_hits"):
        bound = seeded_backend.bind(name, {"subscriptions": subscriptions}, now=demo_end)
        local = seeded_backend.run_query(bound).frame
        remote = azure_backend.run_query(bound).frame
        pd.testing.assert_frame_equal(local, remote)
        assert set(remote["subscription"]) <= set(subscriptions)
        if subscriptions == ["contoso-prod"]:
            assert len(remote) > 0


def test_every_column_type_survives_the_wire(
    seeded_backend: LocalBackend, azure_backend: AzureBackend, demo_end: datetime
) -> None:
    """dynamic (JSON text on the wire), datetime with microseconds, bool, int, long, real, null, NaN.

    (timespan columns are left out: frames.normalize cannot read DuckDB's INTERVAL locally yet.)
    """
    text = (
        "requests\n"
        "| extend dims = tostring(customDimensions)\n"
        "| order by timestamp asc, id asc, dims asc\n"
        "| take 25\n"
        "| project timestamp, id, success, duration, itemCount, customDimensions, dims,\n"
        "    micro = timestamp + 1.234567s, nothing = real(null), nan = real(nan),\n"
        "    calls = tolong(itemCount) * 3000000000, no_text = tostring(customDimensions['absent'])\n"
    )
    bound = kql.BoundQuery(name="all_types", body=text, values={})
    local = seeded_backend.run_query(bound).frame
    remote = azure_backend.run_query(bound).frame
    assert len(local) == 25
    assert isinstance(remote["customDimensions"][0], dict)
    pd.testing.assert_frame_equal(local, remote)


def test_concurrent_queries_share_one_backend(
    seeded_backend: LocalBackend,
    azure_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    demo_end: datetime,
) -> None:
    """Pages run queries from several threads: one client, and each answer within its own range."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    bounds = [
        seeded_backend.bind(
            "tokens_over_time",
            {"start_time": demo_end - timedelta(hours=h), "end_time": demo_end},
            now=demo_end,
        )
        for h in (1, 6, 24, 48, 3, 12)
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        remote = list(pool.map(lambda b: azure_backend.run_query(b).frame, bounds))
    for bound, frame in zip(bounds, remote, strict=True):
        pd.testing.assert_frame_equal(seeded_backend.run_query(bound).frame, frame)
    assert all(q.bearer_ok for q in emulator.queries)
    # At most one token fetch per thread racing on first use; afterwards the one cached token.
    assert len(emulator.token_requests) <= 3


def test_a_workspace_with_empty_app_dependencies_still_attributes_by_body(
    workspace_backend: AzureBackend,
    emulator: LogAnalyticsEmulator,
    seeded_backend: LocalBackend,
    demo_end: datetime,
) -> None:
    """Nothing in AppDependencies: the query says so, and attributes by the logged bodies."""
    emulator.empty_tables = {"AppDependencies"}
    frame = workspace_backend.run_query(workspace_backend.bind("limit_hit_causes", now=demo_end)).frame
    assert len(frame) > 0 and not frame["backend_logged"].any()
    local = seeded_backend.run_query(seeded_backend.bind("limit_hit_causes", now=demo_end)).frame
    causes = ["gateway_429", "backend_429", "quota_403", "other_403"]
    # Every demo refusal logs its body, so the bodies alone give the same counts.
    assert frame[causes].sum().to_dict() == local[causes].sum().to_dict()
    assert frame["unattributed"].sum() == 0
