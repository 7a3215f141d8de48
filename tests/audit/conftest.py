"""The audit tests use the API's fixtures."""

from tests.api.conftest import alice, api, bob_api  # noqa: F401
