"""Two processes that run the same reaction of the same event at the same time, on Postgres:
the second waits for the first's claim and finds the reaction done (exactly once), rather than
reacting a second time. The overlap is forced, not hoped for: the first holds its claim until it
sees the second blocked on it (tests/e2e/reaction_race.py)."""

import subprocess

import psycopg
import pytest

from tests.e2e.conftest import PYTHON, ROOT, base_env, drop_database, make_workspace, postgres_admin_dsn, scale_out_keys

pytestmark = pytest.mark.e2e
SCRIPT = str(ROOT / "tests" / "e2e" / "reaction_race.py")


def test_two_processes_racing_for_one_reaction_react_once(tmp_path):
    admin_dsn, user = postgres_admin_dsn()
    database = f"lakeflow_race_{tmp_path.name[-8:].replace('-', '_')}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        env = base_env(tmp_path / "home", make_workspace(tmp_path), 0)
        (tmp_path / "home").mkdir()
        env["DATABASE_URL"] = f"postgresql://{user}@127.0.0.1:5432/{database}"
        env.update(scale_out_keys())

        def run(*args):
            return subprocess.Popen([PYTHON, SCRIPT, *args], cwd=ROOT, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        migrate = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        out, err = run("setup").communicate(timeout=120)
        event_id = out.strip().splitlines()[-1]
        gate = str(tmp_path / "first-is-reacting")
        first, second = run("first", event_id, gate), run("second", event_id, gate)
        results = [proc.communicate(timeout=300) for proc in (first, second)]
        assert [proc.returncode for proc in (first, second)] == [0, 0], results
        assert [out.strip().splitlines()[-1] for out, _ in results] == ["True", "True"]

        with psycopg.connect(env["DATABASE_URL"]) as conn:
            effects = conn.execute("SELECT data->>'by' FROM runs_runevent WHERE type = 'test.effect'").fetchall()
            marks = conn.execute("SELECT count(*) FROM runs_reaction WHERE name = 'tests.reaction_race' "
                                 "AND done_at IS NOT NULL").fetchone()[0]
            pending = conn.execute("SELECT reactions_pending FROM runs_runevent WHERE id = %s",
                                   (int(event_id),)).fetchone()[0]
        assert effects == [("first",)]
        assert marks == 1 and pending is None
    finally:
        drop_database(database)
