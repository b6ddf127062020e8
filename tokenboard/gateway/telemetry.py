"""The ``llm-emit-token-metric`` policy and request logging: what APIM sends to App Insights.

Token metrics are pre-aggregated the way the Application Insights SDK does it: one
``customMetrics`` row per minute, metric name and dimension combination, carrying ``valueSum``,
``valueCount``, min, max and standard deviation of the calls it covers. Rows are written every
flush interval (about a second), so one minute of one combination can arrive as a few rows; the
queries sum ``valueSum``, which makes that invisible. Every request, refused or not, becomes one
``requests`` row. A writer thread does the Parquet work off the event loop; ``stop()`` flushes
what is left. A process killed outright loses only the last unflushed interval: segments are
written atomically by the store.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tokenboard import appinsights
from tokenboard.config import Settings
from tokenboard.store import Store

log = logging.getLogger(__name__)

ROLE_NAME = "tokenboard-gateway"
APIM_KEYS = appinsights.apim_keys("Local", ROLE_NAME, ROLE_NAME)
OPERATION_NAME = "Creates a chat completion"


@dataclass
class _Aggregate:
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.squares += value * value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    @property
    def stddev(self) -> float:
        mean = self.total / self.count
        return math.sqrt(max(0.0, self.squares / self.count - mean * mean))


def utc_naive(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC).replace(tzinfo=None)


class Telemetry:
    """Buffers metrics and request rows; a background thread appends them to the store."""

    def __init__(self, store: Store | None, settings: Settings, flush_seconds: float | None = None) -> None:
        self.store = store
        self.settings = settings
        self.flush_seconds = settings.gateway.flush_ms / 1000 if flush_seconds is None else flush_seconds
        self._metrics: dict[tuple[datetime, str, str], _Aggregate] = {}
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- recording (called on the event loop; cheap) ----------------------------------

    def record_tokens(
        self, at: float, subscription: str, api: str, model: str, usage: dict[str, int]
    ) -> None:
        """One completed call: Total / Prompt / Completion tokens (plus any detail categories)."""
        names = self.settings.telemetry
        dims_text = appinsights.metric_dimensions(names, subscription, api, model, APIM_KEYS)
        minute = utc_naive(at - at % 60)
        values = {
            names.total_metric: usage.get("total_tokens", 0),
            names.prompt_metric: usage.get("prompt_tokens", 0),
            names.completion_metric: usage.get("completion_tokens", 0),
        }
        for name, key in (
            (appinsights.CACHED_METRIC, "cached_tokens"),
            (appinsights.REASONING_METRIC, "reasoning_tokens"),
        ):
            if key in usage:
                values[name] = usage[key]
        with self._lock:
            for name, value in values.items():
                self._metrics.setdefault((minute, name, dims_text), _Aggregate()).add(float(value))

    def record_request(
        self,
        *,
        at: float,
        request_id: str,
        method: str,
        path: str,
        status: int,
        duration_ms: float,
        subscription: str | None,
        api: str,
    ) -> None:
        """One gateway request, whatever its outcome. ``path`` carries no query string."""
        # The subscription is unknown on 401: never the key that was sent.
        extra = {"Operation Name": OPERATION_NAME, "Region": APIM_KEYS["Region"], "Service Name": ROLE_NAME}
        dims = appinsights.request_dimensions(self.settings.telemetry, subscription, api, extra)
        row = appinsights.request_row(
            timestamp=utc_naive(at),
            id=request_id,
            name=f"{method} {path}",
            url=path,
            result_code=str(status),
            duration_ms=float(duration_ms),
            dimensions=dims,
            operation=f"{method} {path}",
            role=ROLE_NAME,
        )
        with self._lock:
            self._requests.append(row)

    # --- flushing ----------------------------------------------------------------------

    def start(self) -> None:
        if self.store is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gateway-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer thread and flush everything still buffered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> tuple[int, int]:
        """Write buffered rows to the store; returns (metric rows, request rows) written."""
        with self._write_lock:
            with self._lock:
                metrics, self._metrics = self._metrics, {}
                requests, self._requests = self._requests, []
            if self.store is None or not (metrics or requests):
                return 0, 0
            metric_rows = [self._metric_row(key, agg) for key, agg in metrics.items()]
            if not self._append("customMetrics", metric_rows):
                self._requeue(metrics, requests)
                return 0, 0
            if not self._append("requests", requests):
                self._requeue({}, requests)
                return len(metric_rows), 0
            return len(metric_rows), len(requests)

    def _append(self, table: str, rows: list[dict[str, Any]]) -> bool:
        if not rows:
            return True
        assert self.store is not None
        try:
            self.store.append(table, rows)
            return True
        except Exception as exc:  # a full disk must not lose the rows or kill the gateway
            log.error("Writing gateway %s to %s failed (%s); will retry", table, self.store.data_dir, exc)
            return False

    def _requeue(
        self, metrics: dict[tuple[datetime, str, str], _Aggregate], requests: list[dict[str, Any]]
    ) -> None:
        with self._lock:
            for key, agg in metrics.items():
                current = self._metrics.setdefault(key, _Aggregate())
                current.count += agg.count
                current.total += agg.total
                current.squares += agg.squares
                current.low, current.high = min(current.low, agg.low), max(current.high, agg.high)
            self._requests[:0] = requests

    @staticmethod
    def _metric_row(key: tuple[datetime, str, str], agg: _Aggregate) -> dict[str, Any]:
        minute, name, dims_text = key
        return appinsights.metric_row(
            timestamp=minute,
            name=name,
            value_sum=agg.total,
            value_count=agg.count,
            value_min=agg.low,
            value_max=agg.high,
            value_stddev=agg.stddev,
            dimensions=dims_text,
            role=ROLE_NAME,
        )
