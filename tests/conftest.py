import pytest


@pytest.fixture(autouse=True)
def fresh_graph_cache():
    """Graphs and versions are cached per JobVersion id; tests that roll back reuse ids,
    production never does (AUTOINCREMENT on SQLite, sequences on Postgres)."""
    from runs import dispatch

    dispatch._graphs.clear()
    dispatch._versions.clear()
    yield
    dispatch._graphs.clear()
    dispatch._versions.clear()


@pytest.fixture
def held_broker(monkeypatch):
    """Attempts handed to the broker are kept, not run: runs stay active until a test lets go."""
    held = []
    monkeypatch.setattr("runs.dispatch.enqueue_attempts", held.extend)
    return held
