"""Would reusing closed time bins help when a live range slides? Measure before building it.

    .venv/bin/python bench/sliding.py [--rows 1000000] [--runs 5] [--latency 0.8]

When a live range moves on by ``refresh_seconds``, only its newest bins hold new data: a
time-binned query could keep the closed bins from the cache and ask only for the bins from
the newest closed edge on. This prints, per range and per page, what such reuse could save:

- ``whole``: the binned query over the whole range (what runs today);
- ``newest``: the same query over the newest bins only (what reuse would run);
- ``page``: the slowest query of the page's whole set at that range, binned or not (a page
  waits for its slowest query, so reuse saves page time only when a binned query is it).

On the local store (bench/synth.py, shared with bench/queries.py) and on the Azure path
(the real SDK against tests/azure/la_emulator.py over the same store, every answer after
``--latency`` at least). Medians of warm runs, in seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "azure")]

from queries import ensure_store, machine, newest  # noqa: E402
from tokenboard import kql, localtime  # noqa: E402
from tokenboard.backends import Backend  # noqa: E402
from tokenboard.backends.azure import AzureBackend  # noqa: E402
from tokenboard.backends.local import LocalBackend  # noqa: E402
from tokenboard.config import Settings  # noqa: E402
from tokenboard.store import Store  # noqa: E402
from tokenboard.views import timerange as tr  # noqa: E402

# Each page's queries at the default filters (binned ones marked), as the pages ask them.
BINNED = {"tokens_over_time": {"split_by": "metric"}, "requests_over_time": {"split_by": "subscription"},
          "peak_tokens_over_time": {}, "limit_hit_causes": {}}  # fmt: skip
PAGES = {
    "Overview": ["usage_pivot", "request_totals", "cost_basis", "data_coverage", "tokens_over_time"],
    "Usage": ["usage_pivot", "cost_basis", "tokens_over_time"],
    "Throttling": ["request_totals", "data_coverage", "peak_minute_tokens", "limit_hits", "limit_hit_causes",
                   "requests_over_time", "retry_calls", "peak_tokens_over_time", "limit_plan",
                   "throttled_minutes"],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.8)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.gettempdir()) / "tokenboard-bench" / f"synth-{args.rows}"
    store = Store(data_dir)
    settings = Settings(data_dir=data_dir, seed_on_start=False)
    ensure_store(store, settings, args.rows, "synth")
    end = newest(store) + timedelta(minutes=1)
    print(f"machine: {machine()}; {store.row_count('customMetrics'):,} metric rows; {args.runs} runs")
    print(f"\n== local store; load {os.getloadavg()[0]:.1f} ==")
    measure(LocalBackend(settings, store), end, args.runs)
    from la_emulator import LogAnalyticsEmulator

    with LogAnalyticsEmulator(store, now=end, latency=args.latency) as emulator:
        os.environ.update({**emulator.identity_environment(), "NO_PROXY": "127.0.0.1,localhost"})
        azure = settings.replace(
            backend="azure", app_insights_resource_id=emulator.resource_id, azure_endpoint=emulator.endpoint
        )
        print(f"\n== Azure path, {args.latency * 1000:.0f} ms per query; load {os.getloadavg()[0]:.1f} ==")
        measure(AzureBackend(azure), end, args.runs)
    print(f"\nload at the end: {os.getloadavg()[0]:.1f}")
    return 0


def measure(backend: Backend, end, runs: int) -> None:
    print(f"{'range':5} {'query':22} {'whole':>6} {'newest':>7}   slowest query of each page")
    for preset in ("24h", "30d"):
        span = tr.preset_range(preset, end)
        bins = localtime.plan(span.start, span.end, "UTC", tr.bin_unit(span, tr.AUTO))
        piece = bins.pieces[-1]
        newest_edge = bins.edges[-2]  # the start of the newest bin: everything before it is closed
        times = {name: timed(backend, name, span.start, span.end, runs) for p in PAGES.values() for name in p}
        slowest = {page: max(names, key=times.__getitem__) for page, names in PAGES.items()}
        pages = ", ".join(f"{page} {times[q]:.2f} ({q})" for page, q in slowest.items())
        for name, extra in BINNED.items():
            grid = {"bin_size": piece.size, "bin_phase": piece.phase, **extra}
            whole = timed(backend, name, span.start, span.end, runs, grid)
            newest_only = timed(backend, name, newest_edge, span.end, runs, grid)
            note = pages if name == "tokens_over_time" else ""
            print(f"{preset:5} {name:22} {whole:6.2f} {newest_only:7.2f}   {note}")


def timed(backend: Backend, name: str, start, end, runs: int, extra: dict | None = None) -> float:
    declared = {p.name for p in kql.get_query(name).params}
    params = {"start_time": start, "end_time": end, **(extra or {})}
    bound = backend.bind(name, {k: v for k, v in params.items() if k in declared})
    backend.run_query(bound)  # warm: translation, store views
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        backend.run_query(bound)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


if __name__ == "__main__":
    raise SystemExit(main())
