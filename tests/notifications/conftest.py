from tests.runs.conftest import alice, broker  # noqa: F401 (fixtures)
