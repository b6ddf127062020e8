"""Parts of a page that reuse another part's query instead of asking their own (each saves a
round trip on the Azure path) show exactly what their own query would have returned."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tokenboard import planning
from tokenboard.views import throttling, usage


@pytest.fixture(scope="module")
def span(demo_end):
    return {"start_time": demo_end - timedelta(days=2), "end_time": demo_end}


def frame(backend, name: str, params) -> pd.DataFrame:
    return backend.run_query(backend.bind(name, params)).frame


@pytest.mark.parametrize("filters", [{}, {"apis": ["chat"]}])
def test_top_consumers_from_the_usage_pivot_equal_the_top_consumers_query(
    seeded_backend, demo_settings, span, filters
):
    derived = usage.consumers(frame(seeded_backend, "usage_pivot", span | filters), demo_settings)
    asked = frame(seeded_backend, "top_consumers", span | filters)
    assert not asked.empty
    columns = ["subscription", "total_tokens", "prompt_tokens", "completion_tokens", "calls", "share"]
    pd.testing.assert_frame_equal(
        derived[columns].reset_index(drop=True),
        asked.sort_values("total_tokens", ascending=False, kind="stable")[columns].reset_index(drop=True),
        check_dtype=False,
    )


def test_the_limit_hit_rate_from_the_per_subscription_series_equals_the_total_series(seeded_backend, span):
    params = span | {"bin_size": timedelta(hours=1)}
    total = throttling.rates_over_time(
        frame(seeded_backend, "requests_over_time", params | {"split_by": "none"})
    )
    summed = throttling.rates_over_time(
        frame(seeded_backend, "requests_over_time", params | {"split_by": "subscription"})
    )
    assert total.data["rate_limited"].sum() > 0
    pd.testing.assert_frame_equal(summed.data, total.data)


def test_the_plans_own_what_if_equals_the_what_if_query_of_one_subscription(
    seeded_backend, demo_settings, span
):
    candidate, budget = demo_settings.limits.tokens_per_minute, 0.01
    params = span | {"candidate": candidate, "refusal_budget": budget}
    whole = frame(seeded_backend, "limit_plan", params)
    assert len(whole) >= 3
    for sub in whole["subscription"]:
        one = frame(seeded_backend, "limit_plan", params | {"subscriptions": [sub]})
        pd.testing.assert_frame_equal(
            planning.plan(whole[whole["subscription"] == sub], demo_settings, candidate, budget),
            planning.plan(one, demo_settings, candidate, budget),
        )
