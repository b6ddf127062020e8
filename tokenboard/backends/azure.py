"""The Azure backend: the same KQL files, run by the Log Analytics query API.

``azure-monitor-query`` does the HTTP; this module chooses resource or workspace,
passes the time range so the service can prune data before the query's own
``where`` runs, and turns every way a query can fail into one ``BackendError`` subclass
whose message says what to do. The SDK's own automatic retries are off: a 429 from
the query API (its own throttling, not the gateway's) is retried here after the
``Retry-After`` it names, at most twice and only for a short wait; a longer one is
said, since a dashboard should not hang.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.identity import DefaultAzureCredential
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult

from tokenboard import kql
from tokenboard.backends.base import (
    AuthError,
    Backend,
    BackendError,
    BadQueryError,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    QueryResult,
    QueryTimeoutError,
    ThrottledError,
)
from tokenboard.config import ConfigError, Settings
from tokenboard.frames import from_rows
from tokenboard.safe import md

DEFAULT_ENDPOINT = "https://api.loganalytics.io"
MAX_SERVER_TIMEOUT_SECONDS = 600  # the service's own ceiling for ``Prefer: wait``
# How long to wait for the service's answer beyond the server timeout we ask it for:
# it stops the query itself and answers 504, which says more than a socket timeout.
READ_GRACE_FRACTION = 0.25
READ_GRACE_MIN_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 10.0
# A 429 from the query API: retried after its Retry-After, this often and this long at most.
THROTTLE_RETRIES = 2
THROTTLE_MAX_WAIT_SECONDS = 10
ROLE_HINT = (
    "Give the identity the Monitoring Reader role on the Application Insights resource "
    "(or Log Analytics Reader on the workspace)."
)
_SECRET_PATTERNS = (
    re.compile(r"(?i)bearer\s+[\w\-\.~+/=]+"),
    re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"),  # a JWT, wherever it appears
)


class AzureBackend(Backend):
    """Runs bound KQL against an Application Insights resource or a Log Analytics workspace."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.resource_id = settings.azure.resource_id
        self.workspace_id = "" if self.resource_id else settings.azure.workspace_id
        self.prelude = kql.PRELUDES["workspace" if self.workspace_id else "app_insights"]
        self.endpoint = (settings.azure.endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        if not settings.azure.target:
            raise ConfigError(
                "app_insights_resource_id",
                "is required with backend = 'azure' (or set workspace_id for a Log Analytics workspace)",
            )

    @property
    def description(self) -> str:
        if self.workspace_id:
            where = f"Log Analytics workspace {self.workspace_id}"
        else:
            where = f"Application Insights {_resource_label(self.resource_id)}"
        if self.endpoint != DEFAULT_ENDPOINT:
            where += f" via {self.endpoint}"
        return where

    def describe(self) -> str:
        return f":material/cloud: Azure Application Insights  \n{md(self.settings.azure.target)}"

    def _logs_client(self) -> Any:
        """One credential and one client per backend, made on first use so that building a
        backend (e.g. to show its description) never touches the network or the credential."""
        with self._lock:
            if self._client is None:
                options: dict[str, Any] = {
                    "endpoint": self.endpoint,
                    "retry_total": 0,
                    "connection_timeout": CONNECT_TIMEOUT_SECONDS,
                    "read_timeout": _read_timeout(self.settings.query.timeout_seconds),
                }
                if self.settings.azure.audience:
                    options["audience"] = self.settings.azure.audience
                self._client = LogsQueryClient(DefaultAzureCredential(), **options)
            return self._client

    def run_query(self, bound: kql.BoundQuery) -> QueryResult:
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                return self._result(self._send(bound), bound)
            except BackendError:
                raise
            except HttpResponseError as exc:
                wait = _retry_after(exc) if exc.status_code == 429 else None
                if wait is None or wait > THROTTLE_MAX_WAIT_SECONDS or attempt == THROTTLE_RETRIES:
                    raise self._error(exc, bound) from None
                time.sleep(wait)
            except Exception as exc:  # every SDK failure becomes one worded error
                raise self._error(exc, bound) from None
        raise AssertionError("unreachable")

    def _send(self, bound: kql.BoundQuery) -> Any:
        client = self._logs_client()
        options: dict[str, Any] = {
            "timespan": _timespan(bound.values),
            "server_timeout": min(self.settings.query.timeout_seconds, MAX_SERVER_TIMEOUT_SECONDS),
        }
        if self.endpoint.startswith("http://"):
            # Plain http is only ever a local emulator; without this the SDK refuses to
            # send a bearer token over it.
            options["enforce_https"] = False
        if self.workspace_id:
            return client.query_workspace(self.workspace_id, bound.text, **options)
        return client.query_resource(self.resource_id, bound.text, **options)

    def _result(self, response: Any, bound: kql.BoundQuery) -> QueryResult:
        warnings: tuple[str, ...] = ()
        if isinstance(response, LogsQueryPartialResult):
            tables = response.partial_data or []
            warnings = (_partial_warning(response.partial_error),)
            if not tables:
                raise BackendError(f"Azure could not finish query '{bound.name}'. {warnings[0]}")
        else:
            tables = response.tables
        if not tables:
            raise BadQueryError(
                f"Azure answered query '{bound.name}' with no result table.",
                hint="Check that the query ends in a tabular expression.",
            )
        table = tables[0]
        frame = from_rows(table.columns, table.columns_types, [list(row) for row in table.rows])
        return QueryResult(frame=frame, query=bound, warnings=warnings)

    # --- failures ------------------------------------------------------------------------

    def _error(self, exc: Exception, bound: kql.BoundQuery) -> BackendError:
        target = self.description
        timeout = self.settings.query.timeout_seconds
        if isinstance(exc, HttpResponseError) and exc.status_code is not None:
            return self._http_error(exc, bound)
        if isinstance(exc, ClientAuthenticationError) or _caused_by(exc, ClientAuthenticationError):
            return AuthError(
                f"Could not sign in to Azure to query {target}.",
                hint="Sign in with `az login` where the dashboard runs, or give the app a managed "
                "identity (App Service, Container Apps), then reload. " + ROLE_HINT,
            )
        if isinstance(exc, ServiceResponseTimeoutError) or _caused_by(exc, TimeoutError):
            return QueryTimeoutError(
                f"Query '{bound.name}' got no answer from Azure within {timeout} s.",
                hint="Narrow the time range or the filters, or raise query_timeout_seconds.",
            )
        if isinstance(exc, ServiceRequestError):
            return NetworkError(
                f"Could not reach the Log Analytics API at {self.endpoint}.",
                hint="Check the network, any proxy settings and azure_endpoint, then retry.",
            )
        if isinstance(exc, ServiceResponseError):
            return NetworkError(
                f"The connection to {self.endpoint} broke while query '{bound.name}' was running.",
                hint="Retry; if it keeps happening, narrow the time range.",
            )
        what = type(exc).__name__
        detail = _clean(str(exc)) if isinstance(exc, AzureError) else ""
        return BackendError(
            f"Querying {target} failed ({what}{': ' + detail if detail else ''}).",
            hint="Retry; if it persists, run the query in the portal's Logs blade to compare.",
        )

    def _http_error(self, exc: HttpResponseError, bound: kql.BoundQuery) -> BackendError:
        status = int(exc.status_code or 0)
        code, message = _service_error(exc)
        said = f" Azure said: {message}" if message else ""
        target = self.description
        if status == 400:
            return BadQueryError(
                f"Log Analytics rejected query '{bound.name}' as invalid.{said}",
                hint=f"Check queries/{bound.name}.kql and the dimension and metric names in the "
                "configuration.",
            )
        if status == 401:
            return AuthError(
                f"Azure did not accept the sign-in for {target} (HTTP 401).{said}",
                hint="Sign in again with `az login` or check the app's managed identity; with a "
                "sovereign cloud or private link also set azure_audience.",
            )
        if status == 403 and code.startswith("InvalidAuthenticationToken"):
            return AuthError(
                f"Azure did not accept the sign-in token for {target} (HTTP 403).{said}",
                hint="With a sovereign cloud or a private link, set azure_audience to the API's "
                "audience (for example https://api.loganalytics.azure.cn); otherwise sign in again.",
            )
        if status == 403:
            return ForbiddenError(
                f"The signed-in identity may not read {target} (HTTP 403).{said}", hint=ROLE_HINT
            )
        if status == 404:
            return NotFoundError(
                f"{target} was not found (HTTP 404).{said}",
                hint="Check app_insights_resource_id (/subscriptions/<id>/resourceGroups/<group>/"
                "providers/microsoft.insights/components/<name>) or workspace_id (the Workspace ID "
                "on the workspace's Overview page).",
            )
        if status == 429:
            wait = _retry_after(exc)
            when = f"wait {wait} s" if wait else "wait a minute"
            return ThrottledError(
                "The Log Analytics query API is throttling this identity's requests (HTTP 429).",
                hint=f"This is the API's own limit, not the gateway's: {when} and retry; a longer "
                "cache_ttl_seconds sends fewer queries.",
            )
        if status in (408, 504) or code == "GatewayTimeout":
            return QueryTimeoutError(
                f"Query '{bound.name}' ran longer than {self.settings.query.timeout_seconds} s and "
                f"Azure stopped it (HTTP {status}).",
                hint="Narrow the time range or the filters, or raise query_timeout_seconds (at most 600).",
            )
        if status >= 500:
            return BackendError(
                f"Log Analytics had a server error running query '{bound.name}' (HTTP {status}).{said}",
                hint="This is usually temporary: retry in a minute.",
            )
        return BackendError(
            f"Log Analytics answered HTTP {status} to query '{bound.name}'.{said}",
            hint="Retry; if it persists, run the query in the portal's Logs blade to compare.",
        )


# --- helpers ---------------------------------------------------------------------------------


def _read_timeout(query_timeout: float) -> float:
    return query_timeout + max(READ_GRACE_MIN_SECONDS, query_timeout * READ_GRACE_FRACTION)


def _timespan(values: Any) -> tuple[datetime, datetime] | None:
    """The query's own range, so the service reads only those partitions."""
    start, end = values.get("start_time"), values.get("end_time")
    if isinstance(start, datetime) and isinstance(end, datetime):
        return (start, end)
    return None


def _resource_label(resource_id: str) -> str:
    """``name`` (resource group ``rg``) from an ARM id, or the id itself if it is odd."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    name = parts[-1] or resource_id
    if "resourcegroups" in lowered[:-1]:
        group = parts[lowered.index("resourcegroups") + 1]
        return f"'{name}' (resource group {group})"
    return f"'{name}'"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """True if ``kind`` is anywhere in the chain (the SDK re-raises auth errors as plain ones)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        inner = getattr(current, "inner_exception", None)
        current = (
            current.__cause__ or current.__context__ or (inner if isinstance(inner, BaseException) else None)
        )
    return False


def _service_error(exc: HttpResponseError) -> tuple[str, str]:
    """The service's error code and its most specific message, from the JSON body."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else {}
    except (ValueError, TypeError, AttributeError):
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code = str(error.get("code") or "")
    messages = [str(error.get("message") or "")]
    inner = error.get("innererror")
    while isinstance(inner, dict):
        if inner.get("message"):
            messages.append(str(inner["message"]))
        inner = inner.get("innererror")
    specific = [m for m in messages if m]
    return code, _clean(specific[-1] if specific else "")


def _partial_warning(error: Any) -> str:
    """A sentence for a partial result: what went wrong, and that the data may be incomplete."""
    messages: list[str] = []
    for detail in getattr(error, "details", None) or []:
        inner = detail
        deepest = detail.get("message") if isinstance(detail, Mapping) else None
        while isinstance(inner, Mapping) and isinstance(inner.get("innererror"), Mapping):
            inner = inner["innererror"]
            deepest = inner.get("message") or deepest
        if deepest:
            messages.append(_clean(str(deepest)))
    if not messages and getattr(error, "message", None):
        messages.append(_clean(str(error.message)))
    reason = " ".join(messages) or "the service did not say why"
    return (
        f"Azure returned only part of the result ({reason}). The numbers shown may be incomplete: "
        "narrow the time range or the filters."
    )


def _retry_after(exc: HttpResponseError) -> int | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(1, int(float(value))) if value else None
    except ValueError:
        return None


def _clean(text: str, limit: int = 400) -> str:
    """One line, no credentials, not too long: safe to show and to log."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
