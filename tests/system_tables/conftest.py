"""Fixtures for the system tables: users, a job with a history (versions, a run sliced over three
hours with a retry and a repair, a running run), and the database DuckDB attaches.

The unit tests' database lives in memory, where DuckDB cannot attach it: ``system_db`` copies it
into a file at each query (SQLite's backup), so every query still reads the rows as they are then.
"""

import itertools
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections

from jobs.models import ADMINS_GROUP, Job, JobPermission
from jobs.spec.settings import validate_job_settings
from runs.executors.system_views import Target
from runs.models import Repair, Run, TaskRun

T0 = datetime(2026, 3, 2, 10, 30, tzinfo=timezone.utc)


def at(minutes, seconds=0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def copied_database(path):
    """The test database's committed rows copied into the SQLite file `path`, as a target."""
    connection = connections["default"]
    connection.ensure_connection()
    copy = sqlite3.connect(path)
    try:
        connection.connection.backup(copy)
    finally:
        copy.close()
    return Target("sqlite", str(path))


@pytest.fixture
def system_db(transactional_db, tmp_path, monkeypatch):
    """Queries of the system tables read a fresh copy of the test database (committed rows)."""
    from system_tables import queries

    numbers = itertools.count()

    def target():
        return copied_database(tmp_path / f"copy-{next(numbers)}.sqlite3")

    monkeypatch.setattr(queries, "target", target)
    queries.kept.clear()
    yield target
    queries.kept.clear()


def make_user(name, admin=False):
    user = get_user_model().objects.create_user(name, password="x")
    if admin:
        user.groups.add(Group.objects.get_or_create(name=ADMINS_GROUP)[0])
    return user


def make_users():
    return {"admin": make_user("root", admin=True), "alice": make_user("alice"), "bob": make_user("bob")}


@pytest.fixture
def users(system_db):
    return make_users()


def make_job(user, tasks, **settings):
    job = Job(creator=user)
    job.save_version(validate_job_settings({"name": settings.pop("name", "job"), "tasks": tasks, **settings}), user)
    return job


def shell(key, depends_on=()):
    return {"task_key": key, "shell_command_task": {"command": "true"},
            **({"depends_on": [{"task_key": d} for d in depends_on]} if depends_on else {})}


def sql_task(key, depends_on=()):
    return {"task_key": key, "sql_task": {"warehouse_id": "default", "query": {"query_text": "SELECT 1"}},
            **({"depends_on": [{"task_key": d} for d in depends_on]} if depends_on else {})}


def make_run(job, created, **fields):
    fields.setdefault("life_cycle_state", "TERMINATED")
    return Run.objects.create(job=job, job_version=job.current_version, created_at=created, run_as=job.creator,
                              creator=job.creator, **fields)


def make_attempt(run, key, started, ended, result="SUCCESS", **fields):
    fields.setdefault("task_type", "shell_command_task")
    fields.setdefault("worker_host", "node-1")
    finished = ended is not None
    return TaskRun.objects.create(
        run=run, task_key=key, created_at=run.created_at, queued_at=started, started_at=started, ended_at=ended,
        life_cycle_state="TERMINATED" if finished else "RUNNING", result_state=result if finished else None,
        termination_code={"SUCCESS": "SUCCESS", "FAILED": "RUN_EXECUTION_ERROR"}.get(result) if finished else None,
        termination_type={"SUCCESS": "SUCCESS", "FAILED": "CLIENT_ERROR"}.get(result) if finished else None,
        **fields)


@pytest.fixture
def history(users):
    return make_history(users)


def make_history(users):
    """alice's job "etl" (two versions; the second adds a SQL task b after a) with

    - run ``long``: 10:30 to 12:10 (three hourly slices), admitted at 10:30:05; task a fails at
      first and succeeds on its retry, b (SQL, on warehouse default) fails, and a repair reruns it;
    - run ``running``: started now, still running;

    and bob's job "reports" with one short run."""
    alice, bob = users["alice"], users["bob"]
    etl = make_job(alice, [shell("a")], name="etl")
    first = etl.current_version
    etl.save_version(validate_job_settings({
        "name": "etl", "tasks": [shell("a"), sql_task("b", depends_on=["a"])], "tags": {"team": "data"},
        "schedule": {"quartz_cron_expression": "0 30 10 * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"},
        "timeout_seconds": 7200,
    }), alice)
    long = make_run(etl, at(0), started_at=at(0, 5), ended_at=at(100), result_state="SUCCESS",
                    termination_code="SUCCESS", termination_type="SUCCESS", repair_count=1,
                    job_parameters=[{"name": "day", "default": "", "value": "2026-03-02"}])
    a0 = make_attempt(long, "a", at(0, 10), at(10), "FAILED", is_current=False, cpu_seconds=1.5)
    a1 = make_attempt(long, "a", at(11), at(50), attempt_number=1, original_attempt=a0, cpu_seconds=42.0,
                      peak_memory_bytes=200_000_000, read_bytes=1000, written_bytes=2000, cost=0.25,
                      setup_duration_ms=4000, cleanup_duration_ms=1000,
                      resolved_values={"shell_command_task": {"command": "true"}})
    b0 = make_attempt(long, "b", at(51), at(55), "FAILED", task_type="sql_task", is_current=False,
                      data_access={"sql": {"warehouse_id": "default", "dialect": "duckdb", "statements": [],
                                           "row_counts": [], "schema": {}}})
    repair = Repair.objects.create(run=long, creator=alice, created_at=at(90), ended_at=at(100),
                                   rerun_tasks=["b"], life_cycle_state="TERMINATED", result_state="SUCCESS")
    b1 = make_attempt(long, "b", at(91), at(99), task_type="sql_task", repair=repair,
                      resolved_values={"sql_task": {"parameters": {"day": "2026-03-02"}}},
                      sql_output={"warehouse_id": "default", "columns": [], "rows": []})
    running = make_run(etl, datetime.now(timezone.utc) - timedelta(seconds=30), life_cycle_state="RUNNING",
                       started_at=datetime.now(timezone.utc) - timedelta(seconds=29))
    r_a = make_attempt(running, "a", running.started_at, None)
    reports = make_job(bob, [shell("only")], name="reports")
    short = make_run(reports, at(5), started_at=at(5), ended_at=at(6), result_state="FAILED",
                     termination_code="RUN_EXECUTION_ERROR", termination_type="CLIENT_ERROR")
    s0 = make_attempt(short, "only", at(5), at(6), "FAILED")
    return {"etl": etl, "first_version": first, "long": long, "a0": a0, "a1": a1, "b0": b0, "b1": b1,
            "repair": repair, "running": running, "running_a": r_a, "reports": reports, "short": short,
            "short_attempt": s0}


def query(user, sql, **options):
    """The Answer of ``sql`` as ``user`` sees the system tables; rows as dicts."""
    from system_tables.queries import open_for, run_on, scope_for

    with open_for(scope_for(user)) as cursor:
        answer = run_on(cursor, sql, **options)
    return [dict(zip(answer.columns, row)) for row in answer.rows]


def grant(job, user, level="CAN_VIEW"):
    JobPermission.objects.create(job=job, user=user, level=level)
