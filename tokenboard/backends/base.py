"""The one interface every backend implements, and the errors it may raise.

A backend says what it can do: ``describe()`` where its data comes from, ``prelude`` which
shared table prelude its queries start with, ``reads_local_store`` / ``store`` whether it reads
the local store (the embedded gateway writes there too), and ``seed_if_empty()`` whether it can
fill that store with demo traffic.
Every failure of a query is a :class:`BackendError` subclass, one per kind of failure, so
callers word their advice by class and never see a driver's or an SDK's own exceptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from tokenboard import kql
from tokenboard.config import Settings
from tokenboard.safe import md

if TYPE_CHECKING:
    from tokenboard.store import Store


class BackendError(RuntimeError):
    """A query failed; ``str()`` is a message a person can act on, with no secrets in it."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.hint = hint
        super().__init__(message if not hint else f"{message} {hint}")


class AuthError(BackendError):
    """No credential worked, or the service refused the token."""


class ForbiddenError(BackendError):
    """Signed in, but the identity may not read the data."""


class NotFoundError(BackendError):
    """The resource or workspace does not exist."""


class BadQueryError(BackendError):
    """The query text was rejected (a bug in a query file, or a bad dimension name)."""


class ThrottledError(BackendError):
    """The query service itself is throttling (not the gateway's token limit)."""


class QueryTimeoutError(BackendError):
    """The query ran longer than ``query.timeout_seconds``."""


class NetworkError(BackendError):
    """The service could not be reached, or the connection broke."""


class StoreReadError(BackendError):
    """The local store could not be read (a damaged file, a bad manifest, a full disk)."""


class StoreManifestError(StoreReadError):
    """The local store's manifest is not one tokenboard wrote (edited by hand): bad input."""


@dataclass(frozen=True)
class QueryResult:
    """A query's frame plus what the user should know about it."""

    frame: pd.DataFrame
    query: kql.BoundQuery
    warnings: tuple[str, ...] = field(default_factory=tuple)


class Backend(ABC):
    """Runs bound query files and returns typed columns; pages never learn which one runs."""

    #: The shared prelude file the bound KQL starts with (what the user sees and can paste).
    prelude: str = kql.PRELUDES["app_insights"]
    #: True: it reads the local store (``store.data_dir``), where the gateway and importer write.
    reads_local_store: ClassVar[bool] = False
    #: That store, on an instance; None for a backend without one (e.g. Azure).
    store: Store | None = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod  # noqa: B027 - a hook: most backends need no check
    def check_settings(cls, settings: Settings) -> None:
        """Raise ``ConfigError`` when the settings cannot work with this backend."""

    @property
    def description(self) -> str:
        """Where the data comes from, in a sentence (messages, the CLI)."""
        return type(self).__name__

    def describe(self) -> str:
        """Where the data comes from, as Markdown for the Overview page's Data source box."""
        return md(self.description)

    def seed_if_empty(self) -> bool:
        """Fill an empty store with demo traffic; False when there was nothing to do (or no store)."""
        return False

    def bind(
        self, query_name: str, params: Mapping[str, Any] | None = None, now: datetime | None = None
    ) -> kql.BoundQuery:
        """The exact KQL this backend runs for a query file (also shown under "Data and KQL")."""
        query = kql.get_query(query_name)
        return kql.bind(query, params or {}, self.settings.telemetry.names(), self.prelude, now)

    def notices(self) -> list[str]:
        """What a person should know about the data source beside any one query (one line each)."""
        return []

    @abstractmethod
    def run_query(self, bound: kql.BoundQuery) -> QueryResult:
        """Run a bound query and return its first table."""
