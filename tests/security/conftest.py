"""The security tests use the API's and the dashboard's fixtures."""

from tests.api.conftest import alice, api  # noqa: F401
from tests.dashboard.conftest import browser, user  # noqa: F401
