"""Where queries run: the ``Backend`` interface, its errors, and the registry of backends.

``settings.backend`` names an entry of ``REGISTRY``; everything else asks the backend what it
can do (``describe``, ``prelude``, ``store``, ``seed_if_empty``) instead of comparing names.
A new backend is a module in this folder and one line in ``REGISTRY``. Entries are imported on
first use, so the Azure SDK is never loaded for the local store.
"""

from __future__ import annotations

import importlib

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
    StoreManifestError,
    StoreReadError,
    ThrottledError,
)
from tokenboard.config import ConfigError, Settings

__all__ = [
    "REGISTRY",
    "AuthError",
    "Backend",
    "BackendError",
    "BadQueryError",
    "ForbiddenError",
    "NetworkError",
    "NotFoundError",
    "QueryResult",
    "QueryTimeoutError",
    "StoreManifestError",
    "StoreReadError",
    "ThrottledError",
    "backend_class",
    "check_settings",
    "make_backend",
]

# name -> "module:class"
REGISTRY: dict[str, str] = {
    "local": "tokenboard.backends.local:LocalBackend",
    "azure": "tokenboard.backends.azure:AzureBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class registered under ``name``; an unknown name is a configuration error."""
    if name not in REGISTRY:
        raise ConfigError("backend", f"must be one of {', '.join(REGISTRY)}, not {name!r}")
    module, _, attribute = REGISTRY[name].partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attribute)
    return cls


def check_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` unless the chosen backend can work with these settings."""
    backend_class(settings.backend).check_settings(settings)


def make_backend(settings: Settings) -> Backend:
    """The backend the settings ask for (the local store unless another is configured)."""
    cls = backend_class(settings.backend)
    cls.check_settings(settings)
    return cls(settings)
