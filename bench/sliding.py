"""Would reusing closed time bins help when a live range slides? Measure before building it.

    .venv/bin/python bench/sliding.py [--rows 1000000] [--runs 5] [--latency 0.8]

When a live range moves on by ``refresh_seconds``, only its newest bins hold new data: a
time-binned query could keep the closed bins from the cache and ask only for the bins from
the newest closed edge on. This prints, per range and per page, what such reuse could save:

- each binned query over the whole range (what runs today) and over its newest bins only
  (what reuse would run);
- per page, what it waits for today (its slowest query) and with reuse (its slowest query
  once every binned one asks only for its newest bins).

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
from datetime import datetime, timedelta
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
DAY = {"bin_size": timedelta(days=1), "bin_phase": timedelta(0)}
# The time-binned queries, as the pages ask them (cost_basis: Overview's, per day, API and model).
BINNED = {
    "tokens_over_time": {"split_by": "metric"},
    "requests_over_time": {"split_by": "subscription"},
    "peak_tokens_over_time": {},
    "limit_hit_causes": {},
    "cost_basis": {"split_by": "none", **DAY},
    "cost_basis by subscription": {"split_by": "subscription", **DAY},  # Usage's costs
}
# Each page's queries at the default filters, by the names above for the binned ones.
PAGES = {
    "Overview": ["usage_pivot", "request_totals", "cost_basis", "data_coverage", "tokens_over_time"],
    "Usage": ["usage_pivot", "cost_basis by subscription", "tokens_over_time"],
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


def measure(backend: Backend, end: datetime, runs: int) -> None:
    for preset in ("24h", "30d"):
        span = tr.preset_range(preset, end)
        bins = localtime.plan(span.start, span.end, "UTC", tr.bin_unit(span, tr.AUTO))
        piece = bins.pieces[-1]
        whole, newest = {}, {}
        for name in dict.fromkeys(n for names in PAGES.values() for n in names):
            extra = BINNED.get(name)
            if extra is None:
                whole[name] = timed(backend, name, span.start, span.end, runs)
                continue
            grid = {"bin_size": piece.size, "bin_phase": piece.phase, **extra}
            # Everything before the start of the newest bin is closed: reuse would ask only for the rest.
            edge = bins.edges[-2]
            if "bin_size" in extra:  # day bins: the newest UTC day
                day = span.end.replace(hour=0, minute=0, second=0, microsecond=0)
                edge = day if day < span.end else day - timedelta(days=1)
            whole[name] = timed(backend, name, span.start, span.end, runs, grid)
            newest[name] = timed(backend, name, edge, span.end, runs, grid)
        print(f"{preset}: binned query, whole range / newest bins only")
        print("    " + ", ".join(f"{name} {whole[name]:.2f} / {newest[name]:.2f}" for name in newest))
        for page, names in PAGES.items():
            today = max(names, key=whole.__getitem__)
            reused = max(names, key=lambda n: newest.get(n, whole[n]))
            print(
                f"    {page}: waits {whole[today]:.2f} ({today}); "
                f"with reuse {newest.get(reused, whole[reused]):.2f} ({reused})"
            )


def timed(backend: Backend, name: str, start, end, runs: int, extra: dict | None = None) -> float:
    name = name.split()[0]  # "cost_basis by subscription" is cost_basis
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
