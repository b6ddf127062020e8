"""The ``llm-emit-token-metric`` policy and request logging: what APIM sends to App Insights.

Token metrics are pre-aggregated the way the Application Insights SDK does it: one
``customMetrics`` row per minute, metric name and dimension combination, carrying ``valueSum``,
``valueCount``, min, max and standard deviation of the calls it covers. Rows are written every
flush interval (about a second), so one minute of one combination can arrive as a few rows; the
queries sum ``valueSum``, which makes that invisible. Every request, refused or not, becomes one
``requests`` row; every call forwarded to the backend one ``dependencies`` row with the same
``operation_Id``. Like APIM with "Headers to log" = Retry-After and payload logging on for the
frontend response, a requests row keeps the body of an error answer and its Retry-After. A
writer thread does the Parquet work off the event loop; ``stop()`` flushes what is left. A
process killed outright loses only the last unflushed interval: segments are written atomically
by the store, and each flush's batch at most once however often it is retried.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import uuid
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
        self._dependencies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writer = uuid.uuid4().hex[:16]  # this process's batch ids: <writer>-<sequence>
        self._sequence = itertools.count(1)
        self._pending: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {
            "customMetrics": [],
            "dependencies": [],
            "requests": [],
        }
        self._failing: dict[str, str] = {}  # table -> the cause last logged
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
            (names.cached_metric, "cached_tokens"),
            (names.reasoning_metric, "reasoning_tokens"),
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
        logged: dict[str, str] | None = None,
    ) -> None:
        """One gateway request, whatever its outcome. ``path`` carries no query string; ``logged``
        holds what APIM's diagnostics log of the answer (under the configured ``Response-*`` keys)."""
        # The subscription is unknown on 401: never the key that was sent.
        extra = {"Operation Name": OPERATION_NAME, "Region": APIM_KEYS["Region"], "Service Name": ROLE_NAME}
        dims = appinsights.request_dimensions(
            self.settings.telemetry, subscription, api, extra | (logged or {})
        )
        row = appinsights.request_row(
            timestamp=utc_naive(at),
            operation_id=request_id,
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

    def record_dependency(
        self, *, at: float, operation_id: str, target: str, url: str, status: int | None, duration_ms: float
    ) -> None:
        """One call forwarded to the backend; ``status`` None when it never answered."""
        path = url.split("://", 1)[-1].partition("/")[2]
        row = appinsights.dependency_row(
            timestamp=utc_naive(at),
            result_code="" if status is None else str(status),
            operation_id=operation_id,
            target=target,
            name=f"POST /{path}",
            data=url,
            duration_ms=float(duration_ms),
            operation=OPERATION_NAME,
            role=ROLE_NAME,
        )
        with self._lock:
            self._dependencies.append(row)

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
        unwritten = sum(len(rows) for batches in self._pending.values() for _, rows in batches)
        if unwritten and self.store is not None:
            log.error("Stopping with %d telemetry rows that could not be written to %s",
                      unwritten, self.store.data_dir)  # fmt: skip

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> tuple[int, int]:
        """Write buffered rows to the store; returns (metric rows, request rows) written.

        Each flush cuts what is buffered into one batch per table with an id of its own (the
        flush cursor). A batch stays pending until the store has taken it and is retried
        under the same id, which the store writes at most once: a write that failed after
        reaching the manifest cannot come back as a second copy.
        """
        with self._write_lock:
            with self._lock:
                metrics, self._metrics = self._metrics, {}
                requests, self._requests = self._requests, []
                dependencies, self._dependencies = self._dependencies, []
            if self.store is None:
                return 0, 0
            self._add_batch("customMetrics", [self._metric_row(key, agg) for key, agg in metrics.items()])
            self._add_batch("dependencies", dependencies)
            self._add_batch("requests", requests)
            metric_rows = self._write_pending("customMetrics")
            # Backend calls first: a reader never sees a refused call's requests row without
            # the backend call that tells who refused it.
            self._write_pending("dependencies")
            return metric_rows, (0 if self._pending["dependencies"] else self._write_pending("requests"))

    def _add_batch(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._pending[table].append((f"{self._writer}-{next(self._sequence)}", rows))

    def _write_pending(self, table: str) -> int:
        """Write pending batches oldest first; stop at the first failure (kept for the next flush)."""
        assert self.store is not None
        written = 0
        pending = self._pending[table]
        while pending:
            batch_id, rows = pending[0]
            try:
                self.store.append(table, rows, batch_id=batch_id)
            except Exception as exc:  # a full disk must not lose the rows or kill the gateway
                self._report_failure(table, exc, sum(len(r) for _, r in pending))
                return written
            pending.pop(0)
            written += len(rows)
        if self._failing.pop(table, None) is not None:
            log.warning("Writing gateway %s to %s works again", table, self.store.data_dir)
        return written

    def _report_failure(self, table: str, exc: Exception, held: int) -> None:
        """One log line per table and cause, not one per flush."""
        cause = str(exc)
        if self._failing.get(table) != cause and self.store is not None:
            self._failing[table] = cause
            log.error(
                "Writing gateway %s to %s failed (%s); %d rows held, will retry",
                table, self.store.data_dir, cause, held,
            )  # fmt: skip

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
