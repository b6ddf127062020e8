"""Time each page end to end under Streamlit's AppTest; see bench/README.md.

    .venv/bin/python bench/pages.py [--rows 1000000 10000000] [--runs 3]

Pages are found, not listed: app.py (the Overview) and every pages/*.py. For each store
size (seeded or reused as bench/queries.py does) a child process runs every page for a
24 h and a 30-day range ending at the newest row, and prints:

- first visit: Streamlit's caches cleared, so a new backend opens the store and every
  query is translated and run (what the first user after a start waits for);
- warm: the query cache cleared before each run but the backend kept, so the page's
  whole query set runs again (median of ``--runs``);
- rerun: a rerun with the query cache in place (what a click that changes no query costs);
- queries: of the warm runs, the median time spent inside ``run_query`` (the page's
  whole query set, without Streamlit's and AppTest's own work), and ``cpu``, the CPU
  time of the process meanwhile (every DuckDB thread), which other jobs on a shared
  machine move far less;

and the peak RSS of the child process, which is the dashboard's memory for that store.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from queries import ensure_store, machine, newest  # noqa: E402
from tokenboard.config import Settings  # noqa: E402
from tokenboard.store import Store  # noqa: E402

RANGES = ("24h", "30d")
TIMEOUT = 600


def pages() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=3, help="warm runs per page (default 3)")
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()) / "tokenboard-bench",
                        help="stores: <data-root>/synth-<rows>, shared with bench/queries.py")  # fmt: skip
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.runs)
    found = [p.relative_to(ROOT) for p in pages() if p.exists()]
    if not found:
        print("no app.py or pages/*.py yet: nothing to time")
        return 1
    print(f"machine: {machine()}")
    print(f"pages: {', '.join(map(str, found))}")
    for rows in args.rows:
        data_dir = args.data_root / f"synth-{rows}"
        store = Store(data_dir)
        how = ensure_store(store, Settings(data_dir=data_dir, seed_on_start=False), rows, "synth")
        print(f"\n== {store.row_count('customMetrics'):,} metric rows ({how}) ==", flush=True)
        # A child per size: its peak RSS is the dashboard's alone (seeding happened here).
        code = subprocess.call([sys.executable, __file__, "--child", str(data_dir), "--runs", str(args.runs)])
        if code:
            return code
    return 0


def child(data_dir: Path, runs: int) -> int:
    for name in [n for n in os.environ if n.startswith("TOKENBOARD_")]:
        del os.environ[name]
    os.environ["TOKENBOARD_DATA_DIR"] = str(data_dir)
    os.environ["TOKENBOARD_SEED_ON_START"] = "false"
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tokenboard.backends.local import LocalBackend
    from tokenboard.views.timerange import format_instant

    spent: list[float] = []
    cpu_spent: list[float] = []
    run_query = LocalBackend.run_query

    def timed_run_query(self, bound):  # counts the time the page's queries take
        began, cpu = time.perf_counter(), time.process_time()
        try:
            return run_query(self, bound)
        finally:
            spent.append(time.perf_counter() - began)
            cpu_spent.append(time.process_time() - cpu)

    LocalBackend.run_query = timed_run_query
    logging.disable(logging.WARNING)  # AppTest's bare-mode warnings would bury the table

    end = format_instant(newest(Store(data_dir)) + timedelta(minutes=1))

    def visit(page: Path, preset: str) -> tuple[float, AppTest]:
        at = AppTest.from_file(str(page), default_timeout=TIMEOUT)
        at.query_params["end"] = end
        at.query_params["range"] = preset
        began = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - began
        if at.exception:
            raise SystemExit(f"{page.name} ({preset}) raised: {[e.message for e in at.exception]}")
        return elapsed, at

    print(f"{'page':24} {'range':>5} {'first':>7} {'warm':>7} {'rerun':>7} {'queries':>8} {'cpu':>7}")
    for page in pages():
        if not page.exists():
            continue
        for preset in RANGES:
            st.cache_data.clear()
            st.cache_resource.clear()
            first, at = visit(page, preset)
            warm, query_sets, query_cpu = [], [], []
            for _ in range(runs):
                st.cache_data.clear()
                spent.clear()
                cpu_spent.clear()
                warm.append(visit(page, preset)[0])
                query_sets.append(sum(spent))
                query_cpu.append(sum(cpu_spent))
            rerun = []
            for _ in range(runs):
                began = time.perf_counter()
                at.run()
                rerun.append(time.perf_counter() - began)
            w, r, q, c = (statistics.median(v) for v in (warm, rerun, query_sets, query_cpu))
            print(f"{page.name:24} {preset:>5} {first:7.3f} {w:7.3f} {r:7.3f} {q:8.3f} {c:7.3f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the dashboard process: {peak:.0f} MB; load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
