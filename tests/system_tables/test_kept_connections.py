"""The connections the query page keeps per identity: reused, still current, and never closed
under a query that is still reading."""


import pytest

from runs.executors.system_views import Scope
from system_tables import queries
from system_tables.queries import open_for, run_on, scope_for
from tests.system_tables.conftest import at, copied_database, make_attempt, make_run


@pytest.fixture
def one_file(system_db, tmp_path, monkeypatch):
    """The test database copied to the same file at each query, as a live database file is."""
    path = tmp_path / "live.sqlite3"

    def target():
        return copied_database(path)

    monkeypatch.setattr(queries, "target", target)
    made = []
    real = queries.connect
    monkeypatch.setattr(queries, "connect", lambda *args, **kwargs: made.append(args) or real(*args, **kwargs))
    return made


def runs(user):
    with open_for(scope_for(user)) as cursor:
        return run_on(cursor, "SELECT count(DISTINCT run_id) FROM system.lakeflow.job_run_timeline").rows[0][0]


def test_a_kept_connection_reads_rows_written_after_it_was_opened(one_file, users, history):
    before = runs(users["alice"])
    make_attempt(make_run(history["etl"], at(500), started_at=at(500), ended_at=at(501), result_state="SUCCESS"),
                 "a", at(500), at(501))

    assert runs(users["alice"]) == before + 1
    assert len(one_file) == 1  # one connection, made once, for alice's scope


def test_a_connection_retired_while_a_query_reads_closes_after_it(one_file, users, history, monkeypatch):
    monkeypatch.setattr(queries, "KEPT_CONNECTIONS", 1)
    with open_for(Scope(None, users["admin"].id)) as reading:
        reading.execute("SELECT range FROM range(100000)")
        assert runs(users["bob"]) == 1  # bob's connection pushes the admin's out of the cache
        assert len(reading.fetchall()) == 100000  # and the admin's query still reads
    assert len(one_file) == 2
    assert runs(users["bob"]) == 1 and len(one_file) == 2  # bob's is the one kept
