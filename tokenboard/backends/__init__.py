"""Where queries run: the ``Backend`` interface and the factory that picks one.

Pages and the CLI call ``backend.run(name, params)`` and never learn which
implementation answered.
"""

from __future__ import annotations

from tokenboard.backends.base import Backend, BackendError, QueryResult
from tokenboard.config import Settings

__all__ = ["Backend", "BackendError", "QueryResult", "make_backend"]


def make_backend(settings: Settings) -> Backend:
    """The backend the settings ask for (the local store unless Azure is configured)."""
    if settings.backend == "azure":
        from tokenboard.backends.azure import AzureBackend

        return AzureBackend(settings)
    from tokenboard.backends.local import LocalBackend

    return LocalBackend(settings)
