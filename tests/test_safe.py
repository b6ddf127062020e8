"""tokenboard.safe: data text reads as its characters in Markdown, plotly figures and st.table.

What a browser makes of the result is proven in tests/pages/test_hostile_names_browser.py;
these tests pin the functions down without one.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from hypothesis import given
from hypothesis import strategies as st

from tokenboard import safe
from tokenboard.safe import JOINER, md

HOSTILE = [
    "[x](https://evil.example/md) ![p](https://evil.example/p.png)",
    '<a href="https://evil.example/html">h</a><img src="https://evil.example/i.png">',
    "[j](javascript:alert(1))",
    "https://evil.example www.evil.example mail@evil.example :material/home: :red[x] $x^2$",
]
MARKUP = r"\`*_[]<>|$~:@&"


def unescaped(markdown: str) -> str:
    """What CommonMark makes of backslash escapes, minus the invisible joiners."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(JOINER, "")


@given(st.text())
def test_md_reads_back_as_the_same_characters(text: str) -> None:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    assert unescaped(md(text)) == normalized


@given(
    st.text(
        alphabet=st.sampled_from([*MARKUP, "h", "t", "p", "s", "w", ".", "/", "a", " ", "\n", "-", "#", "1"])
    )
)
def test_md_leaves_no_markup_character_unescaped_and_no_link_pattern(text: str) -> None:
    out = md(text)
    bare = re.sub(r"\\.", "", out, flags=re.DOTALL)  # drop every escaped pair
    assert not any(c in bare for c in MARKUP)
    plain = out.replace("\\", "")
    assert not re.search(r"https?:|www\.|@\w", plain, re.IGNORECASE)
    for line in out.split("\n"):  # no block starts at a line's beginning
        assert not re.match(r"\s*([#+=-](\s|$)|\d+[.)](\s|$))", line), line


def test_md_keeps_ordinary_values_as_they_are() -> None:
    for value in ("1,234,567", "6.21%", "-5%", "contoso-prod", "müller-ağ-東京", 'say "hi"', "(none)", "–"):
        assert md(value) == value


def test_md_keeps_line_breaks_only_when_asked() -> None:
    assert md("a\nb") == "a\nb"
    assert md("a\r\nb", lines=True) == "a  \nb"


def test_html_escapes_what_plotly_would_render() -> None:
    assert safe.html('<a href="x">y</a> & b') == '&lt;a href="x"&gt;y&lt;/a&gt; &amp; b'


def test_figure_escapes_every_text_from_the_data_and_keeps_numbers_and_templates() -> None:
    times = pd.to_datetime(["2025-03-01", "2025-03-02"], utc=True)
    fig = go.Figure()
    fig.add_bar(
        x=[1.0, 2.0], y=HOSTILE[:2], name=HOSTILE[0], text=HOSTILE[2:], hovertext=HOSTILE[:2],
        customdata=np.array([[HOSTILE[0], 1], [HOSTILE[1], 2]], dtype=object), meta=HOSTILE[1],
        hovertemplate="%{y}<br>%{meta}<extra></extra>",
    )  # fmt: skip
    fig.add_scatter(x=times, y=[1, 2], name="<b>metric</b>")
    fig.add_heatmap(z=[[1, 2]], x=HOSTILE[:2], y=["<i>a</i>"], colorbar={"title": {"text": "<a>m</a>"}})
    fig.update_yaxes(ticktext=["<a>t</a>"], tickvals=[0])
    fig.add_annotation(text="<a href='x'>note</a>")

    out = safe.figure(fig)
    bar, line, heat = out.data
    assert list(bar.y) == [safe.html(h) for h in HOSTILE[:2]]
    assert bar.name == safe.html(HOSTILE[0]) and bar.meta == safe.html(HOSTILE[1])
    assert list(bar.text) == [safe.html(h) for h in HOSTILE[2:]]
    assert bar.customdata[0][0] == safe.html(HOSTILE[0]) and bar.customdata[1][1] == 2
    assert bar.hovertemplate == "%{y}<br>%{meta}<extra></extra>"  # ours, untouched
    assert list(bar.x) == [1.0, 2.0]
    assert line.name == "&lt;b&gt;metric&lt;/b&gt;" and pd.to_datetime(line.x[0], utc=True) == times[0]
    assert heat.colorbar.title.text == "&lt;a&gt;m&lt;/a&gt;" and list(heat.y) == ["&lt;i&gt;a&lt;/i&gt;"]
    assert out.layout.yaxis.ticktext == ("&lt;a&gt;t&lt;/a&gt;",)
    assert out.layout.annotations[0].text == "&lt;a href='x'&gt;note&lt;/a&gt;"
    assert "<" not in str(out.to_dict()["data"][0]["y"])
    assert fig.data[0].name == HOSTILE[0]  # the original is left alone


def test_table_escapes_cells_index_and_column_names() -> None:
    frame = pd.DataFrame({"[h](https://evil.example)": [HOSTILE[0], 3]}, index=["<b>i</b>", "x"])
    out = safe.table(frame)
    assert list(out.columns) == [md("[h](https://evil.example)")]
    assert list(out.index) == [md("<b>i</b>"), "x"]
    assert out.iloc[0, 0] == md(HOSTILE[0]) and out.iloc[1, 0] == 3
