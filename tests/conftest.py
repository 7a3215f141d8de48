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


def _database_kind(item):
    """0: rolled back (db), 1: flushed after (transactional), 2: no database, as pytest-django
    orders them."""
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    if (marker is not None and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences"))) or (
            "transactional_db" in fixtures or "live_server" in fixtures):
        return 1
    return 0 if marker is not None or "db" in fixtures else 2


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """A transactional test's flush empties every table, rows of data migrations too (the admins
    group): a rolled-back database test collected after one fails for that. pytest-django orders
    them; a later reordering hook must not undo it."""
    last = None
    for item in session.items:
        kind = _database_kind(item)
        if kind == 0 and last is not None:
            raise pytest.UsageError(f"{item.nodeid} (a database test) is ordered after {last} (a transactional "
                                    "test, whose flush removes rows the data migrations made)")
        if kind == 1:
            last = last or item.nodeid


@pytest.fixture(params=["small runs planned whole", "every run planned around its change"])
def both_plannings(request, monkeypatch):
    """A test that uses this runs both ways: a run of up to runs.dispatch.SMALL_RUN tasks is
    planned whole after a finish, a bigger one around the task that changed (plan_around); both
    must decide the same."""
    if request.param == "every run planned around its change":
        monkeypatch.setattr("runs.dispatch.SMALL_RUN", 0)
