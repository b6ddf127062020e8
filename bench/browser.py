"""Time every page in real Chromium, from navigation until the app is idle with its charts drawn.

    .venv/bin/python bench/browser.py [--targets local-1000000 local-10000000 azure]
                                      [--latency 0.8] [--runs 3] [--pages Overview Usage]

Each target is one ``streamlit run app.py`` server: the local store at 1M and 10M metric rows
(seeded or reused as bench/queries.py does), and the Azure path, where the real
azure-monitor-query SDK and DefaultAzureCredential talk to tests/azure/la_emulator.py over
loopback (1M-row store; every query takes ``--latency`` seconds, at most 5 run at once, as
the service does per user). Per page and target:

- first visit: a new browser context opens the page with a range no one has asked for yet
  (``end=`` pinned to a different minute in each run), so every query runs; the server is
  warm (it opened the page once before timing). On the Azure path another dashboard opened
  the same link just before (untimed) and the emulator keeps its answers, so every query of
  the timed visit is answered after ``--latency`` without the emulator's DuckDB taking this
  machine's cores (the figures then show the dashboard, not the emulator);
- second tab: another tab opens the same link while the first is still open, within the
  cache TTL: what a colleague opening a shared link, or a second page, waits for.

The clock runs from navigation start (``performance.now()`` in the page) until, in the same
animation frame, Streamlit reports no script running, no spinner is left and the page holds
as many plotly charts (each with its SVG drawn), metrics and tables as it did when settled.
The floor is an empty Streamlit page with one plotly chart, served and timed the same way
in the same run (before each target): every figure is printed beside it. Medians of
``--runs``; the machine's load is printed at start and end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "tests" / "azure")]

from streamlit_server import CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402

from queries import ensure_store, machine, newest  # noqa: E402
from tokenboard.config import Settings  # noqa: E402
from tokenboard.store import Store  # noqa: E402
from tokenboard.views.timerange import format_instant  # noqa: E402

PAGES = {"Overview": "", "Usage": "Usage", "Throttling": "Throttling", "Reports": "Reports",
         "Budgets": "Budgets", "Test request": "Test_request"}  # fmt: skip
FLOOR_APP = """
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(page_title="floor", layout="wide")
st.plotly_chart(go.Figure(go.Scatter(x=list(range(96)), y=[i % 7 for i in range(96)])))
"""
# What "drawn" counts, read in the page: the script's status, spinners, and the content.
COUNT_JS = """() => ({
  running: !!document.querySelector('[data-testid="stStatusWidget"]'),
  spinners: document.querySelectorAll('[data-testid="stSpinner"]').length,
  charts: [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg')).length,
  metrics: document.querySelectorAll('[data-testid="stMetric"]').length,
  tables: document.querySelectorAll('[data-testid="stDataFrame"]').length,
  title: !!document.querySelector('[data-testid="stMainBlockContainer"] h1, [data-testid="stPlotlyChart"]'),
})"""
IDLE_JS = """(want) => {
  const c = (COUNTS)();
  const done = !c.running && c.spinners === 0 && c.title && c.charts >= want.charts
    && c.metrics >= want.metrics && c.tables >= want.tables;
  return done ? performance.now() : false;
}""".replace("COUNTS", COUNT_JS.strip())
TIMEOUT_MS = 120_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["local-1000000", "local-10000000", "azure"],
        help="local-<rows> and/or azure (default: local at 1M and 10M rows, azure)",
    )
    parser.add_argument("--latency", type=float, default=0.8, help="seconds per query on the Azure path")
    parser.add_argument("--azure-rows", type=int, default=1_000_000, help="store behind the emulator")
    parser.add_argument("--runs", type=int, default=3, help="timed visits per page (default 3)")
    parser.add_argument("--range", default="24h", help="the sidebar's range preset (default 24h)")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dashboard setting for every target, e.g. query__max_concurrent=1",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tokenboard-bench",
        help="stores: <data-root>/synth-<rows>, shared with bench/queries.py",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium")
        return 1
    print(f"machine: {machine()}")
    print(f"range {args.range}, {args.runs} runs per figure, medians in seconds from navigation start")
    if args.setting:
        print(f"settings: {', '.join(args.setting)}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        floor_file = Path(tmp) / "floor.py"
        floor_file.write_text(FLOOR_APP)
        with serve(floor_file, {}, Path(tmp) / "floor.log") as floor:
            visit(browser, floor, None)  # warm the floor server
            for target in args.targets:
                run_target(browser, floor, target, args, Path(tmp))
        browser.close()
    print(f"\nload at the end: {os.getloadavg()[0]:.1f}")
    return 0


def run_target(browser, floor: str, target: str, args: argparse.Namespace, tmp: Path) -> None:
    rows = args.azure_rows if target == "azure" else int(target.split("-", 1)[1])
    data_dir = args.data_root / f"synth-{rows}"
    store = Store(data_dir)
    how = ensure_store(store, Settings(data_dir=data_dir, seed_on_start=False), rows, "synth")
    end = newest(store) + timedelta(minutes=1)
    env = {"TOKENBOARD_DATA_DIR": str(data_dir), "TOKENBOARD_SEED_ON_START": "false"}
    env.update({f"TOKENBOARD_{k.upper()}": v for k, v in (kv.split("=", 1) for kv in args.setting)})
    with contextlib.ExitStack() as stack:
        if target == "azure":
            emulator = stack.enter_context(emulated_azure(store, end, args.latency))
            env.update(azure_env(emulator))
            where = f"Azure path, {args.latency * 1000:.0f} ms per query (emulator over {rows:,} rows)"
        else:
            emulator = None
            where = f"local store, {store.row_count('customMetrics'):,} metric rows ({how})"
        print(f"\n== {where}; load {os.getloadavg()[0]:.1f} ==", flush=True)
        server = stack.enter_context(serve(ROOT / "app.py", env, tmp / f"{target}.log"))
        # On the Azure path a second dashboard opens each link first (untimed), so the emulator
        # has worked out every answer before the timed visit asks: the service's own work is done
        # elsewhere, not on this machine's 2 cores, and each answer takes --latency.
        warmer = stack.enter_context(serve(ROOT / "app.py", env, tmp / "warmer.log")) if emulator else None
        if emulator:
            emulator.remember = True
        floors = [visit_pair(browser, floor, None) for _ in range(args.runs)]
        floor_first = statistics.median(f for f, _, _ in floors)
        floor_second = statistics.median(s for _, s, _ in floors)
        print(f"floor (empty page, one chart): first {floor_first:.2f}, second tab {floor_second:.2f}")
        print(f"{'page':14} {'first':>6} {'floor+':>7} {'second':>7} {'floor+':>7}  queries (slowest answer)")
        for index, name in enumerate(args.pages):
            path = PAGES[name]
            # Settle once (not timed): the server imports and opens what the page needs, and
            # this tells what the page holds when drawn.
            want = settle(
                browser,
                link(server, path, args.range, end - timedelta(minutes=len(args.pages) * args.runs + 1)),
            )
            firsts, seconds, sent, measured = [], [], [], []
            for run in range(args.runs):
                # A minute of its own per page and run: nothing cached from other visits.
                url = link(server, path, args.range, end - timedelta(minutes=index * args.runs + run + 1))
                if warmer:
                    visit(browser, url.replace(server, warmer), want)
                before = len(emulator.queries) if emulator else 0
                first, second, between = visit_pair(browser, url, want, emulator)
                firsts.append(first)
                seconds.append(second)
                if emulator:
                    sent.append(f"{between}+{len(emulator.queries) - before - between}")
                    measured += emulator.queries[before:]
            f, s = statistics.median(firsts), statistics.median(seconds)
            # The emulator answers after --latency or after running the query, whichever is later.
            slowest = max((q.seconds for q in measured), default=0.0)
            print(
                f"{name:14} {f:6.2f} {f - floor_first:+7.2f} {s:7.2f} {s - floor_second:+7.2f}  "
                f"{', '.join(sent) if sent else '-'}{f' ({slowest:.2f} s)' if slowest else ''}",
                flush=True,
            )


def link(server: str, path: str, preset: str, end: datetime) -> str:
    return f"{server}/{path}?range={preset}&end={format_instant(end)}"


def settle(browser, url: str) -> dict[str, int]:
    """Open a page, wait until nothing has changed for a while, and count what it holds."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("() => !!document.querySelector('[data-testid=\"stMainBlockContainer\"] h1')",
                           timeout=TIMEOUT_MS)  # fmt: skip
    last, quiet = None, 0
    while quiet < 8:  # 2 s unchanged and idle
        page.wait_for_timeout(250)
        counts = page.evaluate(COUNT_JS)
        idle = not counts["running"] and counts["spinners"] == 0
        quiet = quiet + 1 if idle and counts == last else 0
        last = counts
    failed(page, url)
    context.close()
    return {k: last[k] for k in ("charts", "metrics", "tables")}


def visit(browser, url: str, want: dict[str, int] | None, context=None) -> float:
    """Seconds from navigation start until the page is idle and drawn."""
    own = context is None
    context = context or browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(url, wait_until="commit")
    done = page.wait_for_function(
        IDLE_JS, arg=want or {"charts": 1, "metrics": 0, "tables": 0}, polling="raf", timeout=TIMEOUT_MS
    )
    seconds = done.json_value() / 1000
    failed(page, url)
    if own:
        context.close()
    return seconds


def failed(page, url: str) -> None:
    """Stop the bench if the page shows an error: a broken page's timing means nothing."""
    errors = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
    if errors.count():
        raise SystemExit(f"{url} shows an error: {errors.first.inner_text()[:500]}")


def visit_pair(browser, url: str, want: dict[str, int] | None, emulator=None) -> tuple[float, float, int]:
    """First visit in a new context, then a second tab of the same browser; queries sent by the first."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    before = len(emulator.queries) if emulator else 0
    first = visit(browser, url, want, context)
    between = len(emulator.queries) - before if emulator else 0
    second = visit(browser, url, want, context)
    context.close()
    return first, second, between


@contextlib.contextmanager
def emulated_azure(store: Store, end: datetime, latency: float):
    from la_emulator import LogAnalyticsEmulator

    with LogAnalyticsEmulator(store, now=end, latency=latency) as emulator:
        yield emulator


def azure_env(emulator) -> dict[str, str]:
    """The dashboard on the Azure backend; DefaultAzureCredential gets its token from the emulator."""
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT", "MSI_SECRET",
                 "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):  # fmt: skip
        os.environ.pop(name, None)
    return {
        "TOKENBOARD_BACKEND": "azure",
        "TOKENBOARD_APP_INSIGHTS_RESOURCE_ID": emulator.resource_id,
        "TOKENBOARD_AZURE_ENDPOINT": emulator.endpoint,
        "NO_PROXY": "127.0.0.1,localhost",
        **emulator.identity_environment(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
