"""The system tables on PostgreSQL (the scale-out mode): the same rows, the same filter, the same
refusals. A fresh database, migrated; the history made and queried by a Django process of its own
that uses it (the unit tests' database is SQLite)."""

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import drop_database, postgres_admin_dsn, scale_out_keys

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json
    import django
    django.setup()
    from tests.system_tables.conftest import make_history, make_users, query
    from system_tables.queries import QueryFailed, open_for, run_on, scope_for

    users = make_users()
    h = make_history(users)

    def refused(sql):
        try:
            with open_for(scope_for(users["bob"])) as cursor:
                run_on(cursor, sql)
        except QueryFailed as exc:
            return str(exc)
        return None

    print(json.dumps({
        "ids": {name: h[name].id for name in ("etl", "reports", "long", "a1")},
        "slices": query(users["alice"], f"SELECT period_start_time, period_end_time, result_state, run_duration_seconds "
                                        f"FROM system.lakeflow.job_run_timeline WHERE run_id = {h['long'].id} "
                                        f"ORDER BY period_start_time"),
        "retry": query(users["alice"], f"SELECT attempt_number, result_state, execution_duration_seconds "
                                       f"FROM system.lakeflow.job_task_run_timeline WHERE run_id = {h['a1'].id} "
                                       f"AND result_state IS NOT NULL"),
        "jobs": query(users["alice"], "SELECT version, tags, paused FROM system.lakeflow.jobs ORDER BY version"),
        "bob": query(users["bob"], "SELECT DISTINCT job_id FROM system.lakeflow.job_task_run_timeline"),
        "admin": query(users["admin"], "SELECT DISTINCT job_id FROM system.lakeflow.job_run_timeline ORDER BY job_id"),
        "refused": [refused("SELECT * FROM lakeflow_db.auth_user"),
                    refused("SELECT * FROM postgres_query('lakeflow_db', 'SELECT 1')")],
    }, default=str))
""")


@pytest.fixture
def database(tmp_path):
    import psycopg

    admin_dsn, user = postgres_admin_dsn()
    name = f"lakeflow_systables_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
           "DJANGO_SETTINGS_MODULE": "lakeflow_site.settings", "LAKEFLOW_HOME": str(tmp_path / "home"),
           "DATABASE_URL": f"postgresql://{user}@127.0.0.1:5432/{name}", **scale_out_keys()}
    env.pop("REDIS_URL", None)
    try:
        migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stderr
        yield env
    finally:
        drop_database(name)


def test_the_system_tables_read_postgres_as_they_read_sqlite(database):
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=database, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    ids = found["ids"]

    assert found["slices"] == [
        {"period_start_time": "2026-03-02 10:30:00", "period_end_time": "2026-03-02 11:00:00",
         "result_state": None, "run_duration_seconds": None},
        {"period_start_time": "2026-03-02 11:00:00", "period_end_time": "2026-03-02 12:00:00",
         "result_state": None, "run_duration_seconds": None},
        {"period_start_time": "2026-03-02 12:00:00", "period_end_time": "2026-03-02 12:10:00",
         "result_state": "SUCCEEDED", "run_duration_seconds": 6000.0}]
    assert found["retry"] == [{"attempt_number": 1, "result_state": "SUCCEEDED",
                               "execution_duration_seconds": 39 * 60 - 5.0}]
    assert found["jobs"] == [{"version": 1, "tags": {}, "paused": None},
                             {"version": 2, "tags": {"team": "data"}, "paused": True}]
    assert found["bob"] == [{"job_id": ids["reports"]}]
    assert found["admin"] == [{"job_id": ids["etl"]}, {"job_id": ids["reports"]}]
    assert "is not a system table" in found["refused"][0] and "not available" in found["refused"][1]


def test_the_database_password_is_not_in_what_duckdb_shows_of_the_attached_database(monkeypatch):
    """A query that got past the statement check to DuckDB's catalog (duckdb_databases) would
    find the connection string there: the password goes in a DuckDB secret instead."""
    from psycopg.conninfo import conninfo_to_dict

    from runs.executors import system_views
    from runs.executors.system_views import Scope, connect
    from system_tables import queries

    dsn, user = postgres_admin_dsn()

    class Settings:  # Django's connection to our Postgres database, with a password (trust ignores it)
        vendor = "postgresql"

        @staticmethod
        def get_connection_params():
            return {**conninfo_to_dict(dsn), "password": "hunter2-not-shown", "user": user}

    monkeypatch.setattr(queries, "connections", {"default": Settings})
    monkeypatch.setattr(system_views, "view_statements", lambda *args, **kwargs: [])  # no schema needed

    connection = connect(queries.target(), Scope(frozenset()))
    try:
        shown = connection.execute("SELECT database_name, path FROM duckdb_databases").fetchall()
        assert "lakeflow_db" in {name for name, _ in shown}  # attached with the password from its secret
        assert not any("hunter2" in str(path) for _, path in shown), shown
    finally:
        connection.close()
