import pytest


@pytest.fixture(autouse=True)
def fresh_graph_cache():
    """Graphs and versions are cached per JobVersion id; tests that roll back reuse ids,
    production never does (AUTOINCREMENT on SQLite, sequences on Postgres)."""
    from runs import loading

    loading._graphs.clear()
    loading._versions.clear()
    yield
    loading._graphs.clear()
    loading._versions.clear()


@pytest.fixture
def held_broker(monkeypatch):
    """Attempts handed to the broker are kept, not run: runs stay active until a test lets go."""
    held = []
    monkeypatch.setattr("runs.broker.enqueue_attempts", held.extend)
    return held
