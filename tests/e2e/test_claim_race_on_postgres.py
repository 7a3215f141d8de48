"""A worker claiming an attempt from the broker and a finishing worker taking the same attempt
for its handoff (under the run lock), at once on Postgres: one of them has it, neither deadlocks.
Before, the claim locked the attempt's row and then, at commit, its run's (the event row's
deferred foreign key): the opposite order to the finish, a deadlock a second (deadlock_timeout),
133 of them in a 2,000-iteration for-each (tests/e2e/claim_race.py forces the overlap)."""

import json
import subprocess

import psycopg
import pytest

from tests.e2e.conftest import (
    PYTHON,
    ROOT,
    base_env,
    drop_database,
    make_workspace,
    migrated_template,
    postgres_admin_dsn,
    scale_out_keys,
)

pytestmark = pytest.mark.e2e


def test_a_broker_claim_and_a_handoff_claim_of_one_attempt_do_not_deadlock(tmp_path):
    admin_dsn, user = postgres_admin_dsn()
    database = f"lakeflow_claim_{tmp_path.name[-8:].replace('-', '_')}"
    env = base_env(tmp_path / "home", make_workspace(tmp_path), 0)
    (tmp_path / "home").mkdir()
    env.update(DATABASE_URL=f"postgresql://{user}@127.0.0.1:5432/{database}", **scale_out_keys())
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{migrated_template(env, user)}"')
    try:
        done = subprocess.run([PYTHON, str(ROOT / "tests" / "e2e" / "claim_race.py")], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results = json.loads(done.stdout.strip().splitlines()[-1])
        assert results["claimer blocked"] is True  # the overlap happened
        assert (results["finisher"], results["claimer"]) == (True, False), results
        assert results["attempt"] == ["RUNNING", "finisher"]
    finally:
        drop_database(database)
