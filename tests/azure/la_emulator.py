"""A local stand-in for the Azure Monitor Log Analytics query API, for tests and benchmarks.

It answers the two paths ``azure-monitor-query`` sends (``POST /v1/{resource id}/query``
and ``POST /v1/workspaces/{id}/query``) in the service's JSON shape, running the KQL
with duckdb-kql over a tokenboard ``Store``. Like the service, it filters every table by
the request's ``timespan`` in addition to the query's own ``where``, and it exposes the
classic tables (customMetrics, requests, dependencies) and the workspace ones (AppMetrics,
AppRequests, AppDependencies).

It also serves an App Service managed-identity token endpoint, so the real
``DefaultAzureCredential`` gets its token over loopback (``identity_environment()``).

    with LogAnalyticsEmulator(store) as emu:
        settings = Settings(backend="azure", app_insights_resource_id=emu.resource_id,
                            azure_endpoint=emu.endpoint)
        ...                                  # emu.queries records every query and its rows

Failure modes (``emu.set_mode(...)``) make it answer the way the service does when
things go wrong: forbidden (403), throttled (429 + Retry-After), partial (200 with a
PartialError and truncated rows), slow (sleeps; 504 once past the client's ``Prefer:
wait``), server_error (500), bad_query (400), identity_denied (token endpoint refuses),
malformed (200 with an HTML page, as a captive proxy would send). A mode can be limited
to the next ``times`` queries, or to queries whose text contains ``match``.

Timing, as the service behaves: ``latency`` (seconds) is how long each query takes from
the moment it starts running (the answer is held back until then; the KQL itself runs
inside that time), and at most ``max_concurrent`` queries run at once (the service's 5
per user); the others wait their turn in arrival order, and that wait counts too. Each
``RecordedQuery`` keeps when it arrived, started and was answered (``time.monotonic()``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb
import duckdb_kql
from duckdb_kql.types import kusto_type

from tokenboard import kql
from tokenboard.appinsights import SCHEMAS, TABLES
from tokenboard.store import Store

RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-gateway"
    "/providers/microsoft.insights/components/appi-gateway"
)
WORKSPACE_ID = "11111111-2222-3333-4444-555555555555"
IDENTITY_PATH = "/msi/token"
PROXY_PAGE = b"<html><body>Proxy login required</body></html>"
MODES = (
    "forbidden",
    "throttled",
    "partial",
    "slow",
    "server_error",
    "bad_query",
    "identity_denied",
    "malformed",
)

# Workspace-based Application Insights tables, as views over the classic ones.
_WORKSPACE_VIEWS = {
    "AppMetrics": (
        "customMetrics",
        'timestamp AS TimeGenerated, name AS "Name", valueSum AS "Sum", valueMin AS "Min", '
        'valueMax AS "Max", valueCount AS "ItemCount", customDimensions AS "Properties", '
        'operation_Name AS "OperationName", cloud_RoleName AS "AppRoleName"',
    ),
    "AppRequests": (
        "requests",
        'timestamp AS TimeGenerated, id AS "Id", name AS "Name", url AS "Url", '
        'resultCode AS "ResultCode", success AS "Success", duration AS "DurationMs", '
        'itemCount AS "ItemCount", customDimensions AS "Properties", '
        'operation_Name AS "OperationName", cloud_RoleName AS "AppRoleName", operation_Id AS "OperationId"',
    ),
    "AppDependencies": (
        "dependencies",
        'timestamp AS TimeGenerated, id AS "Id", target AS "Target", type AS "DependencyType", '
        'name AS "Name", data AS "Data", success AS "Success", resultCode AS "ResultCode", '
        'duration AS "DurationMs", itemCount AS "ItemCount", customDimensions AS "Properties", '
        'operation_Id AS "OperationId", operation_Name AS "OperationName", cloud_RoleName AS "AppRoleName"',
    ),
}
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass
class RecordedQuery:
    """One query request as the emulator saw it (the token itself is never recorded)."""

    path: str
    target: str  # the resource id or workspace id in the URL
    query: str
    timespan: str | None
    prefer: str
    authorization: str  # ok | missing | wrong_audience | invalid
    status: int = 0
    rows: int = 0
    seconds: float = 0.0
    arrived: float = 0.0  # time.monotonic() when the request came in
    started: float = 0.0  # when it got one of the max_concurrent slots
    answered: float = 0.0  # when the answer was sent

    @property
    def bearer_ok(self) -> bool:
        return self.authorization == "ok"


class LogAnalyticsEmulator:
    """A threaded HTTP server on 127.0.0.1 emulating the Log Analytics query API."""

    def __init__(
        self,
        store: Store,
        *,
        resource_id: str = RESOURCE_ID,
        workspace_id: str = WORKSPACE_ID,
        now: dt.datetime | None = None,
        latency: float = 0.0,
        max_concurrent: int = 5,
    ) -> None:
        self.store = store
        self.resource_id = resource_id
        self.workspace_id = workspace_id
        self.now = now  # "now" for duration-only timespans (default: the clock)
        self.audience = ""  # the token audience queries must carry (empty: the endpoint)
        self.tokens: dict[str, str] = {}  # audience -> the token issued for it
        self.identity_header = "emu-identity-" + secrets.token_urlsafe(12)
        self.queries: list[RecordedQuery] = []
        self.token_requests: list[dict[str, str]] = []
        self.mode: str | None = None
        self.options: dict[str, Any] = {}
        # Workspace tables with nothing logged (e.g. AppDependencies when APIM logs no backend calls).
        # (A table missing outright cannot be emulated: duckdb-kql needs its columns under a join.)
        self.empty_tables: set[str] = set()
        self.latency = latency
        # Keep every answer and give it again for the same query and timespan: the service's own
        # work then takes no CPU of this machine (bench/browser.py), only ``latency``.
        self.remember = False
        self._answers: dict[tuple[str, str | None], tuple[list[dict[str, str]], list[list[Any]]]] = {}
        self._slots = _FifoSlots(max_concurrent)
        self._mode_lock = threading.Lock()
        self._stop = threading.Event()
        self._released = threading.Event()  # ends the waits of "slow" queries early
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> LogAnalyticsEmulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="la-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LogAnalyticsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def max_concurrent(self) -> int:
        """How many queries run at once (the service: 5 per user); the rest wait in turn."""
        return self._slots.size

    @max_concurrent.setter
    def max_concurrent(self, size: int) -> None:
        self._slots = _FifoSlots(size)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the emulator first"
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """What to pass as ``azure_endpoint`` / ``LogsQueryClient(endpoint=...)``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.endpoint}{IDENTITY_PATH}"

    @property
    def token(self) -> str:
        """The token this emulator accepts (issued for its audience)."""
        return self.token_for(self.audience or self.endpoint)

    def token_for(self, audience: str) -> str:
        """The token the identity endpoint hands out for ``audience`` (one per audience)."""
        return self.tokens.setdefault(audience.rstrip("/"), "emu-token-" + secrets.token_urlsafe(24))

    def identity_environment(self) -> dict[str, str]:
        """Environment variables that make DefaultAzureCredential use this token endpoint."""
        return {"IDENTITY_ENDPOINT": self.identity_endpoint, "IDENTITY_HEADER": self.identity_header}

    def set_mode(self, mode: str | None, **options: Any) -> None:
        """Answer later requests in a failure mode (None: normally).

        Options: throttled ``retry_after`` (s); server_error ``message``; partial
        ``keep_rows`` (rows kept, default half); slow ``delay`` (s) and ``honor_wait``
        (default True: answer 504 once the client's ``Prefer: wait`` has passed, as the
        service does; False: just hang; ``release()`` ends the wait). Any mode: ``match``
        (only queries whose text contains it) and ``times`` (only the next N such queries,
        then answer normally).
        """
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
        with self._mode_lock:
            self.mode, self.options = mode, options

    def release(self) -> None:
        """Let every "slow" query that is waiting answer now (and later ones not wait)."""
        self._released.set()

    def mode_for(self, query: str) -> tuple[str | None, dict[str, Any]]:
        """The failure mode this query gets (counting it against ``times``)."""
        with self._mode_lock:
            mode, options = self.mode, self.options
            if mode is None or options.get("match", "") not in query:
                return None, {}
            if "times" in options:
                if options["times"] <= 0:
                    return None, {}
                options["times"] -= 1
            return mode, options

    def overlap(self, queries: list[RecordedQuery] | None = None) -> int:
        """The most queries that were running at the same moment (from start to answer)."""
        events = sorted(
            (t, step)
            for q in (self.queries if queries is None else queries)
            if q.started and q.answered
            for t, step in ((q.started, 1), (q.answered, -1))
        )
        running = most = 0
        for _, step in events:
            running += step
            most = max(most, running)
        return most

    # --- query execution ----------------------------------------------------------------

    def execute(self, query: str, timespan: str | None) -> tuple[list[dict[str, str]], list[list[Any]]]:
        """Columns and wire-form rows of the query's first table, within ``timespan``.

        Each request gets its own in-memory DuckDB with views limited to its timespan,
        so concurrent requests with different ranges never see each other's views.
        """
        if self.remember and (query, timespan) in self._answers:
            return self._answers[query, timespan]
        start, end = parse_timespan(timespan, self.now) if timespan else (None, None)
        con = duckdb_kql.connect()
        try:
            for table in TABLES:
                files = [str(p) for p in self.store.segment_paths(table)]
                con.execute(_view_sql(table, files, start, end))
            for view, (table, columns) in _WORKSPACE_VIEWS.items():
                where = " WHERE false" if view in self.empty_tables else ""
                con.execute(f'CREATE VIEW "{view}" AS SELECT {columns} FROM "{table}"{where}')
            relation = duckdb_kql.kql(con, query)
            types = [kusto_type(t) for t in relation.types]
            columns = [{"name": n, "type": t} for n, t in zip(relation.columns, types, strict=True)]
            rows = [[to_wire(v, t) for v, t in zip(row, types, strict=True)] for row in relation.fetchall()]
            if self.remember:
                self._answers[query, timespan] = columns, rows
            return columns, rows
        finally:
            con.close()


class EmulatorError(Exception):
    """An error answer: HTTP status plus the service's ``{"error": ...}`` body."""

    def __init__(self, status: int, code: str, message: str, inner: dict | None = None) -> None:
        self.status = status
        self.body: dict[str, Any] = {"error": {"message": message, "code": code}}
        self.body["error"]["correlationId"] = str(uuid.uuid4())
        if inner:
            self.body["error"]["innererror"] = inner
        super().__init__(message)


class _Handler(BaseHTTPRequestHandler):
    emulator: LogAnalyticsEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # --- token endpoint -----------------------------------------------------------------

    def do_GET(self) -> None:
        emu = self.emulator
        url = urlsplit(self.path)
        if url.path != IDENTITY_PATH:
            self._json(404, {"error": {"code": "NotFound", "message": "no such path"}})
            return
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        emu.token_requests.append(params)
        if self.headers.get("X-IDENTITY-HEADER") != emu.identity_header:
            self._json(401, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER is wrong"})
            return
        if emu.mode == "identity_denied":
            self._json(400, {"error": "invalid_request", "error_description": "Identity not found"})
            return
        self._json(
            200,
            {
                "access_token": emu.token_for(params.get("resource", "")),
                "expires_on": str(int(time.time()) + 3600),
                "resource": params.get("resource", ""),
                "token_type": "Bearer",
            },
        )

    # --- query API --------------------------------------------------------------------

    def do_POST(self) -> None:
        emu = self.emulator
        started = time.perf_counter()
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = unquote(urlsplit(self.path).path)
        record = RecordedQuery(
            path=path,
            target="",
            query="",
            timespan=None,
            prefer=self.headers.get("Prefer", ""),
            authorization=_token_kind(self.headers.get("Authorization", ""), emu),
            arrived=arrived,
        )
        emu.queries.append(record)
        with emu._slots:
            record.started = time.monotonic()
            try:
                status, body, headers = self._answer(record, raw)
            except EmulatorError as err:
                status, body, headers = err.status, err.body, {}
            emu._stop.wait(max(0.0, record.started + emu.latency - time.monotonic()))
        record.status = status
        record.seconds = time.perf_counter() - started
        record.answered = time.monotonic()
        if isinstance(body, bytes):
            self._raw(status, body, "text/html", headers)
        else:
            self._json(status, body, headers)

    def _answer(self, record: RecordedQuery, raw: bytes) -> tuple[int, dict | bytes, dict[str, str]]:
        emu = self.emulator
        record.target = _target(record.path, emu)
        if record.authorization == "missing":
            raise EmulatorError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        if record.authorization == "wrong_audience":
            raise EmulatorError(
                403,
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained from wrong audience or resource. It should exactly "
                f"match one of the allowed audiences '{emu.audience or emu.endpoint}'.",
            )
        if not record.bearer_ok:
            raise EmulatorError(403, "InvalidAuthenticationToken", "The access token is invalid.")
        try:
            body = json.loads(raw or b"{}")
            record.query = body["query"]
            record.timespan = body.get("timespan")
        except (ValueError, KeyError, TypeError):
            raise EmulatorError(400, "BadArgumentError", "The request had some invalid properties") from None
        mode, options = emu.mode_for(record.query)
        if mode == "forbidden":
            raise EmulatorError(
                403,
                "InsufficientAccessError",
                "The provided credentials have insufficient access to perform the requested operation",
            )
        if mode == "throttled":
            retry_after = str(options.get("retry_after", 30))
            error = EmulatorError(
                429,
                "ThrottledError",
                "Your request was throttled. Retry after the time in the Retry-After header.",
            )
            return 429, error.body, {"Retry-After": retry_after}
        if mode == "server_error":
            message = options.get("message", "An internal server error occurred.")
            raise EmulatorError(500, "InternalServerError", message)
        if mode == "malformed":
            return 200, PROXY_PAGE, {}
        if mode == "bad_query":
            raise _syntax_error("Query could not be parsed at 'wherex' on line [1,16]")
        if mode == "slow":
            delay = float(options.get("delay", 30))
            wait = _prefer_wait(record.prefer)
            if options.get("honor_wait", True) and wait is not None and wait < delay:
                emu._stop.wait(wait)
                raise EmulatorError(
                    504, "GatewayTimeout", "The query exceeded the allowed time (Prefer: wait)."
                )
            emu._released.wait(delay)
        try:
            columns, rows = emu.execute(record.query, record.timespan)
        except ValueError as exc:  # a timespan the service would not accept
            raise EmulatorError(
                400,
                "BadArgumentError",
                "The request had some invalid properties",
                {"code": "InvalidTimespan", "message": str(exc)},
            ) from None
        except duckdb_kql.KqlError as exc:
            raise _syntax_error(str(exc)) from None
        except duckdb.Error as exc:
            raise EmulatorError(
                400,
                "BadArgumentError",
                "The request had some invalid properties",
                {"code": "SemanticError", "message": f"A semantic error occurred. {exc}"},
            ) from None
        answer: dict[str, Any] = {}
        if mode == "partial":
            rows = rows[: int(options.get("keep_rows", len(rows) // 2))]
            answer["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [
                    {
                        "code": "EngineError",
                        "message": "Something went wrong processing your query on the server.",
                        "innererror": {
                            "code": "-2133196797",
                            "message": "Query result set has exceeded the internal record count limit "
                            "500000 (E_QUERY_RESULT_SET_TOO_LARGE).",
                            "severity": 2,
                            "severityName": "Error",
                        },
                    }
                ],
            }
        record.rows = len(rows)
        answer["tables"] = [{"name": "PrimaryResult", "columns": columns, "rows": rows}]
        return 200, answer, {}

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._raw(status, data, "application/json; charset=utf-8", headers)

    def _raw(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a client-side timeout test)


class _FifoSlots:
    """At most ``size`` holders at once; the others wait in arrival order (the service's queue)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: list[threading.Event] = []

    def __enter__(self) -> None:
        with self._lock:
            if self._running < self.size and not self._waiting:
                self._running += 1
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # the slot is handed over by the holder that leaves

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.pop(0).set()
            else:
                self._running -= 1


# --- helpers ---------------------------------------------------------------------------------


def _target(path: str, emu: LogAnalyticsEmulator) -> str:
    """The resource or workspace a query URL names; 404 for anything the emulator does not hold."""
    match = re.fullmatch(r"/v1/workspaces/([^/]+)/query", path)
    if match:
        if match[1] != emu.workspace_id:
            raise EmulatorError(404, "WorkspaceNotFoundError", f"Workspace {match[1]} was not found.")
        return match[1]
    match = re.fullmatch(r"/v1/+(subscriptions/.+)/query", path)
    if match:
        resource = "/" + match[1]
        if resource.lower() != emu.resource_id.lower():
            raise EmulatorError(404, "ResourceNotFoundError", f"The resource {resource} was not found.")
        return resource
    raise EmulatorError(404, "PathNotFoundError", f"The requested path {path} does not exist.")


def _token_kind(header: str, emu: LogAnalyticsEmulator) -> str:
    if not header:
        return "missing"
    if header == f"Bearer {emu.token}":
        return "ok"
    if header.startswith("Bearer ") and header[7:] in emu.tokens.values():
        return "wrong_audience"
    return "invalid"


def _syntax_error(detail: str) -> EmulatorError:
    return EmulatorError(
        400,
        "BadArgumentError",
        "The request had some invalid properties",
        {
            "code": "SyntaxError",
            "message": "A recognition error occurred in the query.",
            "innererror": {"code": "SYN0002", "message": detail},
        },
    )


def _prefer_wait(prefer: str) -> float | None:
    match = re.search(r"wait=(\d+(?:\.\d+)?)", prefer or "")
    return float(match[1]) if match else None


def parse_timespan(text: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """``start/end``, ``start/duration`` or ``duration`` (ending now) as naive UTC datetimes."""
    now = now or dt.datetime.now(dt.UTC)
    if "/" in text:
        first, second = text.split("/", 1)
        start = _instant(first)
        end = start + _duration(second) if second.startswith("P") else _instant(second)
    else:
        end = _naive_utc(now)
        start = end - _duration(text)
    if start > end:
        raise ValueError(f"timespan {text!r} ends before it starts")
    return start, end


def _instant(text: str) -> dt.datetime:
    try:
        return _naive_utc(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time") from None


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return dt.timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0),
                        seconds=parts.get("s", 0))  # fmt: skip


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _view_sql(table: str, files: list[str], start: dt.datetime | None, end: dt.datetime | None) -> str:
    """One table as the service sees it for this request: the store's segments within the
    timespan (inclusive at both ends, like the service), customDimensions as JSON (dynamic)."""
    schema = SCHEMAS[table]
    columns = ", ".join(
        f'"{f.name}"::JSON AS "{f.name}"' if f.name == "customDimensions" else f'"{f.name}"' for f in schema
    )
    if files:
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        source = f"read_parquet([{listed}], union_by_name = true)"
    else:
        empty = ", ".join(f'NULL::{_DUCK_TYPES[str(f.type)]} AS "{f.name}"' for f in schema)
        source = f"(SELECT {empty} WHERE false)"
    where = ""
    if start is not None and end is not None:
        where = f" WHERE timestamp BETWEEN TIMESTAMP '{start.isoformat()}' AND TIMESTAMP '{end.isoformat()}'"
    return f'CREATE VIEW "{table}" AS SELECT {columns} FROM {source}{where}'


_DUCK_TYPES = {"timestamp[us]": "TIMESTAMP", "string": "VARCHAR", "double": "DOUBLE", "int32": "INTEGER",
               "bool": "BOOLEAN"}  # fmt: skip


def to_wire(value: Any, ktype: str) -> Any:
    """A value as the Log Analytics API writes it in ``rows``."""
    if value is None:
        return None
    if ktype == "datetime":
        if isinstance(value, dt.datetime):
            value = _naive_utc(value)
            text = value.strftime("%Y-%m-%dT%H:%M:%S")
            return text + (f".{value.microsecond:06d}0Z" if value.microsecond else "Z")
        if isinstance(value, dt.date):
            return f"{value.isoformat()}T00:00:00Z"
        return str(value)
    if ktype == "timespan" and isinstance(value, dt.timedelta):
        return _timespan_text(value)
    if ktype == "dynamic":
        # The service sends dynamic values as JSON text.
        return value if isinstance(value, str) else json.dumps(_jsonable(value), ensure_ascii=False)
    if ktype in ("real", "decimal", "double"):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return str(value) if isinstance(value, Decimal) else number
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _timespan_text(value: dt.timedelta) -> str:
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.days:
        text = f"{value.days}.{text}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return sign + text


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return to_wire(value, "datetime")
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    return value


def marker(name: str) -> str:
    """A line of the query's file that no other query file holds (the emulator matches on it)."""
    texts = {path.stem: path.read_text() for path in kql.QUERIES_DIR.glob("[!_]*.kql")}
    lines = [line.strip() for line in texts[name].splitlines() if not line.lstrip().startswith("//")]
    return next(line for line in lines if line and not any(line in t for n, t in texts.items() if n != name))
