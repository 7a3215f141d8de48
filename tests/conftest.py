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
    """The same for what notifications keep per JobVersion id (does it notify, its duration
    rules) and per run id (the warnings already made)."""
    from notifications import health, reactions

    caches = (reactions._profiles, health._thresholds, health._warned, health._backlog_versions)
    for cache in caches:
        cache.clear()
    yield
    for cache in caches:
        cache.clear()


@pytest.fixture
def held_broker(monkeypatch):
    """Attempts handed to the broker are kept, not run: runs stay active until a test lets go."""
    held = []
    monkeypatch.setattr("runs.broker.enqueue_attempts", held.extend)
    return held
