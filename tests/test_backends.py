"""The backend seam: a registry of names, capabilities instead of name checks, one error class per kind."""

from __future__ import annotations

import pytest

from tokenboard import backends, kql
from tokenboard.backends.azure import AzureBackend
from tokenboard.backends.local import LocalBackend
from tokenboard.config import ConfigError, Settings
from tokenboard.store import Store

RESOURCE_ID = "/subscriptions/0000/resourceGroups/rg/providers/microsoft.insights/components/ai"


def test_every_registered_backend_implements_the_interface() -> None:
    for name in backends.REGISTRY:
        cls = backends.backend_class(name)
        assert issubclass(cls, backends.Backend), name
        assert cls.prelude in kql.PRELUDES.values()


def test_an_unknown_backend_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        backends.make_backend(Settings(backend="bigquery"))
    assert caught.value.key == "backend"
    assert "must be one of local, azure, not 'bigquery'" in str(caught.value)


def test_a_backend_checks_the_settings_it_needs() -> None:
    with pytest.raises(ConfigError, match="'app_insights_resource_id' is required"):
        backends.make_backend(Settings(backend="azure"))
    assert isinstance(
        backends.make_backend(Settings(backend="azure", azure={"resource_id": RESOURCE_ID})), AzureBackend
    )


def test_capabilities_say_what_a_backend_can_do(settings: Settings) -> None:
    local = backends.make_backend(settings)
    azure = backends.make_backend(Settings(backend="azure", workspace_id="w-1"))
    assert isinstance(local, LocalBackend) and local.reads_local_store and local.store is not None
    assert not azure.reads_local_store and azure.store is None
    assert azure.seed_if_empty() is False  # nothing to seed
    assert "local demo store" in local.describe() and "w-1" in azure.describe()
    assert azure.prelude == kql.PRELUDES["workspace"] and local.prelude == kql.PRELUDES["app_insights"]


def test_seeding_is_a_capability_of_the_local_backend(tmp_path) -> None:
    backend = LocalBackend(Settings(data_dir=tmp_path / "d"))
    assert backend.store.is_empty()
    # (the full 30 days take seconds: test_demo.py covers the traffic; here only that it is wired)
    assert isinstance(backend.seed_if_empty, type(backend.describe))


def test_a_bound_query_keeps_its_parts(local_backend: LocalBackend) -> None:
    bound = local_backend.bind(
        "call_counts", {"start_time": "2025-03-01T00:00:00Z", "end_time": "2025-03-02T00:00:00Z"}
    )
    assert bound.text == bound.prelude + bound.lets + bound.body
    assert bound.prelude.startswith("let TokenMetrics")
    assert bound.lets.startswith("let start_time = datetime(2025-03-01T00:00:00.000000Z);")
    assert bound.body == kql.get_query("call_counts").body


def test_every_error_kind_is_a_backend_error_subclass() -> None:
    kinds = [
        backends.AuthError, backends.ForbiddenError, backends.NotFoundError, backends.BadQueryError,
        backends.ThrottledError, backends.QueryTimeoutError, backends.NetworkError, backends.StoreReadError,
    ]  # fmt: skip
    assert len(set(kinds)) == len(kinds)
    for kind in kinds:
        error = kind("It failed.", hint="Do this.")
        assert isinstance(error, backends.BackendError)
        assert str(error) == "It failed. Do this." and error.hint == "Do this."


def test_a_local_engine_failure_is_a_store_read_error(store: Store, local_backend: LocalBackend) -> None:
    (store.data_dir / "customMetrics").mkdir(parents=True)
    (store.data_dir / "customMetrics" / "manifest.json").write_text("{not json")
    with pytest.raises(backends.StoreReadError, match=r"manifest\.json is not valid JSON"):
        local_backend.run_query(local_backend.bind("call_counts"))


def test_bad_kql_is_a_bad_query_error(local_backend: LocalBackend) -> None:
    with pytest.raises(backends.BadQueryError):
        local_backend.run_query(kql.BoundQuery("broken", body="customMetrics | wherex name == 1\n"))
