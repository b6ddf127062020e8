"""Links: every value a page cannot take is named in one notice, filters are kept, nothing raises."""

from __future__ import annotations

import re

import pytest

from tokenboard import safe


def notices(at) -> list[str]:
    return [w.value for w in at.warning if "Ignored from the link" in w.value]


def test_every_ignored_link_value_is_named_in_one_notice(open_page):
    at = open_page("usage", range="zzz", tz="Mars/Base", bin="3d", top="99", view="Pie", foo="bar")
    [notice] = notices(at)
    for item in ("range=zzz", "tz=Mars/Base", "bin=3d", "top=99", "view=Pie", "foo=bar"):
        assert item in notice, (item, notice)
    assert len(at.dataframe) >= 1  # the page still shows the default view (24 h, UTC)
    assert at.sidebar.selectbox(key="tz").value == "UTC"


@pytest.mark.parametrize(
    "end", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2025-02-30T00:00:00Z", "next tuesday"]
)
def test_an_impossible_end_is_ignored_and_never_raises(open_page, end):
    at = open_page("overview", end=end)  # open_page asserts there is no exception
    assert [safe.md(f"end={end}") in n for n in notices(at)] == [True]


def test_custom_range_dates_from_the_link_are_checked(open_page):
    at = open_page("throttling", range="custom", **{"from": "2025-13-45T99:00", "to": "2025-03-03T12:00"})
    [notice] = notices(at)
    assert safe.md("from=2025-13-45T99:00") in notice and "to=" not in notice


def test_a_filter_from_a_link_is_kept_when_the_range_has_no_data_for_it(open_page):
    at = open_page("usage", sub=["no-such-team"])
    assert at.sidebar.multiselect(key="sub").value == ["no-such-team"]
    assert any("No data in this range for no-such-team" in c.value for c in at.sidebar.caption)
    assert any("for Subscription: no-such-team" in i.value for i in at.info)  # not "All" totals
    assert not notices(at)


def test_a_valid_zone_from_a_link_is_offered_even_if_not_listed(open_page):
    at = open_page("overview", tz="Asia/Kathmandu")
    assert at.sidebar.selectbox(key="tz").value == "Asia/Kathmandu"
    assert any("(Asia/Kathmandu)" in c.value for c in at.caption)
    assert not notices(at)


def test_link_text_is_shown_as_text_never_as_a_link(open_page):
    link = "[click me](https://evil.example)"
    image = "![x](https://evil.example/p.png)"
    at = open_page("usage", note=link, sub=[image])
    [notice] = notices(at)
    caption = next(c.value for c in at.sidebar.caption if "No data in this range" in c.value)
    assert safe.md(f"note={link}") in notice and safe.md(image) in caption
    markdown_link = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")
    assert not markdown_link.search(notice) and not markdown_link.search(caption)
