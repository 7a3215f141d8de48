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


@pytest.fixture(autouse=True)
def fresh_notification_caches():
    """The same for what is kept per JobVersion id (does it notify, its duration rules) and per
    run id (the health warnings already made)."""
    from notifications import health
    from runs.loading import forget_per_version

    forget_per_version()
    health._warned.clear()
    yield
    forget_per_version()
    health._warned.clear()


@pytest.fixture
def held_broker(monkeypatch):
    """Attempts handed to the broker are kept, not run: runs stay active until a test lets go."""
    held = []
    monkeypatch.setattr("runs.broker.enqueue_attempts", held.extend)
    return held
