"""The scope and secret limits hold when two requests add the last one at the same time, on
Postgres (SQLite's write transactions take turns anyway): the second waits for the first and is
refused, rather than both counting below the limit (tests/e2e/secrets_limit_race.py)."""

import subprocess

import psycopg
import pytest

from tests.e2e.conftest import PYTHON, ROOT, base_env, drop_database, make_workspace, postgres_admin_dsn, scale_out_keys

pytestmark = pytest.mark.e2e


def test_two_requests_adding_the_last_scope_or_secret_add_one(tmp_path):
    admin_dsn, user = postgres_admin_dsn()
    database = f"lakeflow_limits_{tmp_path.name[-8:].replace('-', '_')}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        env = base_env(tmp_path / "home", make_workspace(tmp_path), 0)
        (tmp_path / "home").mkdir()
        env.update(DATABASE_URL=f"postgresql://{user}@127.0.0.1:5432/{database}", **scale_out_keys())
        migrate = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        raced = subprocess.run([PYTHON, str(ROOT / "tests" / "e2e" / "secrets_limit_race.py")], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
        assert raced.returncode == 0, raced.stderr
        assert raced.stdout.splitlines() == ["scopes ok limit 1", "secrets ok limit 1"]
    finally:
        drop_database(database)
