"""Task environments built with uv, for real, from wheels made in the test (no registry): a task
runs on its environment's interpreter, every task with the same spec shares one build, a failed
build fails the task with uv's message and is tried again by the next task, unused ones go."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from runs import environments
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.executors import environments as builder
from runs.models import TaskEnvironment, TaskRun
from tests.runs.conftest import make_job
from tests.wheels import make_wheel


@pytest.fixture(autouse=True)
def own_task_home(tmp_path, settings):
    """Each test's environments apart: a cache hit must come from the test itself."""
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "show.py").write_text(
        "import sys, lakeflow_demo, django\n"
        "print(lakeflow_demo.VALUE, sys.prefix != sys.base_prefix, 'django' in sys.modules)\n")
    return tmp_path


def python_task(workspace, key="t", **fields):
    return {"task_key": key, "spark_python_task": {"python_file": str(workspace / "show.py")}, **fields}


def environment(*dependencies, key="default"):
    return [{"environment_key": key, "spec": {"environment_version": "4", "dependencies": list(dependencies)}}]


def only_attempt(run, key="t"):
    return TaskRun.objects.get(run=run, task_key=key, is_current=True)


def output(attempt):
    return Path(attempt.log_path).read_text()


def setup_log(attempt):
    return Path(environments.setup_log_path(attempt.log_path)).read_text()


@pytest.fixture
def builds(monkeypatch):
    """Counts the environments actually built (each a call of uv), keeping the real build."""
    done = []
    real = environments.build_environment

    def counting(directory, lines, **options):
        done.append(list(lines))
        return real(directory, lines, **options)

    monkeypatch.setattr(environments, "build_environment", counting)
    return done


def test_a_task_with_an_environment_runs_on_its_interpreter_with_its_wheel_and_the_base_packages(
        alice, workspace, builds):
    wheel = make_wheel(workspace)
    job = make_job(alice, [python_task(workspace, environment_key="default")], environments=environment(str(wheel)))
    run, _ = create_run(job)

    attempt = only_attempt(run)
    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert output(attempt) == "42 True True\n"  # its wheel, in a virtualenv, over the server's packages
    assert attempt.setup_duration_ms is not None
    assert "environment_version: 4 (recorded" in setup_log(attempt)
    assert len(builds) == 1
    row = TaskEnvironment.objects.get()
    assert row.state == TaskEnvironment.READY
    assert builder.is_built(environments.environments_dir() / row.key)


def test_a_declared_dependency_overrides_the_servers_copy_of_the_same_package(alice, workspace):
    (workspace / "which.py").write_text("import sqlparse\nprint(sqlparse.__version__)\n")
    wheel = make_wheel(workspace, name="sqlparse", version="99.0", source="__version__ = 'declared 99.0'\n")
    job = make_job(alice, [{"task_key": "t", "spark_python_task": {"python_file": str(workspace / "which.py")},
                            "environment_key": "default"}], environments=environment(str(wheel)))
    attempt = only_attempt(create_run(job)[0])
    assert output(attempt) == "declared 99.0\n"


def test_a_wheel_task_and_a_notebook_task_run_in_the_environment_that_installs_their_code(alice, workspace):
    wheel = make_wheel(workspace, name="lakeflow_entry", source=(
        "import sys\n"
        "def main():\n"
        "    print('entry point', sys.argv[1:], sys.prefix != sys.base_prefix)\n"), entry_points={"run": "lakeflow_entry:main"})
    (workspace / "nb.py").write_text("# Databricks notebook source\nimport lakeflow_entry, sys\n"
                                     "print('notebook', sys.prefix != sys.base_prefix)\n")
    job = make_job(alice, [
        {"task_key": "wheel", "environment_key": "default",
         "python_wheel_task": {"package_name": "lakeflow_entry", "entry_point": "run", "parameters": ["x"]}},
        {"task_key": "nb", "environment_key": "default", "notebook_task": {"notebook_path": str(workspace / "nb.py")}},
    ], environments=environment(str(wheel)))
    run = create_run(job)[0]
    wheel_task, notebook = only_attempt(run, "wheel"), only_attempt(run, "nb")
    assert output(wheel_task) == "entry point ['x'] True\n"
    assert notebook.result_state == R.SUCCESS, notebook.state_message
    assert "notebook True" in Path(notebook.executed_notebook).read_text()  # its kernel ran in the environment


def test_every_task_and_job_with_the_same_spec_shares_one_build(alice, workspace, builds):
    wheel = make_wheel(workspace)
    tasks = [python_task(workspace, "a", environment_key="default"),
             python_task(workspace, "b", environment_key="default", depends_on=[{"task_key": "a"}])]
    first = make_job(alice, tasks, environments=environment(str(wheel)))
    second = make_job(alice, [python_task(workspace, "a", environment_key="other")],
                      environments=environment(f"  {wheel}  ", key="other"))
    runs = [create_run(first)[0], create_run(second)[0]]

    attempts = TaskRun.objects.filter(run__in=runs)
    assert [a.result_state for a in attempts] == [R.SUCCESS] * 3
    assert len(builds) == 1 and TaskEnvironment.objects.count() == 1
    assert sum("built in" in setup_log(a) for a in attempts) == 1


def test_task_libraries_build_an_environment_for_a_task_without_one(alice, workspace, builds):
    wheel = make_wheel(workspace)
    job = make_job(alice, [python_task(workspace, libraries=[{"whl": str(wheel)}, {"jar": "/x/y.jar"}])])
    run, _ = create_run(job)

    attempt = only_attempt(run)
    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert output(attempt) == "42 True True\n"
    assert 'skipped jar library "/x/y.jar"' in setup_log(attempt)


@pytest.mark.parametrize("fields,job_fields", [
    ({}, {}),
    ({"environment_key": "serverless"}, {"environments": [{"environment_key": "serverless", "spec": {"client": "1"}}]}),
], ids=["no environment", "an environment with nothing to install"])
def test_a_task_with_nothing_to_install_runs_on_the_default_interpreter_with_no_setup(
        alice, tmp_path, fields, job_fields):
    (tmp_path / "plain.py").write_text("print('plain')\n")
    job = make_job(alice, [{"task_key": "t", "spark_python_task": {"python_file": str(tmp_path / "plain.py")},
                            **fields}], **job_fields)
    run, _ = create_run(job)

    attempt = only_attempt(run)
    assert attempt.result_state == R.SUCCESS
    assert attempt.setup_duration_ms is None
    assert not Path(environments.setup_log_path(attempt.log_path)).exists()
    assert not TaskEnvironment.objects.exists()


@pytest.mark.parametrize("dependency,named", [
    ("{tmp}/missing-1.0-py3-none-any.whl", "missing-1.0-py3-none-any.whl"),
    ("-r {tmp}/no-such-requirements.txt", "no-such-requirements.txt"),
])
def test_a_missing_wheel_or_requirements_file_fails_the_task_with_uvs_message_naming_it(
        alice, workspace, dependency, named):
    job = make_job(alice, [python_task(workspace, environment_key="default")],
                   environments=environment(dependency.format(tmp=workspace)))
    run, _ = create_run(job)

    attempt = only_attempt(run)
    assert (attempt.result_state, attempt.termination_code) == (R.FAILED, "LIBRARY_INSTALLATION_ERROR")
    assert attempt.state_message.startswith("error:") and named in attempt.state_message
    assert named in setup_log(attempt)
    assert not Path(attempt.log_path).exists()  # the task itself never started
    assert TaskEnvironment.objects.get().state == TaskEnvironment.FAILED
    assert [p.name for p in environments.environments_dir().iterdir() if not p.name.startswith(".")] == []


def test_a_failed_build_is_not_kept_the_next_task_builds_it_again(alice, workspace, builds):
    # The requirements file names a wheel that is not there yet: same spec, same key, both times.
    requirements = workspace / "requirements.txt"
    requirements.write_text(f"{workspace}/dist/lakeflow_demo-1.0-py3-none-any.whl\n")
    job = make_job(alice, [python_task(workspace, environment_key="default")],
                   environments=environment(f"-r {requirements}"))
    assert only_attempt(create_run(job)[0]).result_state == R.FAILED

    (workspace / "dist").mkdir()
    make_wheel(workspace / "dist")
    attempt = only_attempt(create_run(job)[0])
    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert len(builds) == 2 and TaskEnvironment.objects.get().state == TaskEnvironment.READY


def test_a_wheel_on_a_volume_path_installs_from_the_volumes_directory(alice, workspace, settings):
    libs = Path(settings.LAKEFLOW_FS_ROOTS.volumes) / "main" / "default" / "libs"
    libs.mkdir(parents=True, exist_ok=True)
    wheel = make_wheel(libs, version="2.0", source="VALUE = 'from a volume'\n")
    job = make_job(alice, [python_task(workspace, libraries=[
        {"whl": f"/Volumes/main/default/libs/{wheel.name}"}])])
    attempt = only_attempt(create_run(job)[0])
    assert output(attempt) == "from a volume True True\n", attempt.state_message


def test_a_library_path_outside_the_task_roots_is_refused_before_anything_is_built(alice, workspace, builds):
    job = make_job(alice, [python_task(workspace, libraries=[{"whl": str(django_settings.LAKEFLOW_HOME / "x.whl")}])])
    attempt = only_attempt(create_run(job)[0])
    assert (attempt.result_state, attempt.termination_code) == (R.FAILED, "INVALID_RUN_CONFIGURATION")
    assert "server's own files" in attempt.state_message
    assert builds == []


def test_a_rebuilt_wheel_at_the_same_path_is_a_new_environment(alice, workspace, builds):
    wheel = make_wheel(workspace)
    job = make_job(alice, [python_task(workspace, environment_key="default")], environments=environment(str(wheel)))
    create_run(job)
    make_wheel(workspace, source="VALUE = 43\n")
    attempt = only_attempt(create_run(job)[0])
    assert output(attempt) == "43 True True\n"
    assert len(builds) == 2


# --- the claim, step by step (the real race is tests/e2e/test_environments_race_on_postgres.py)


class StepLog:
    def __init__(self):
        self.data = b""

    def write(self, data):
        self.data += data

    def flush(self):
        pass


def test_a_worker_waits_for_a_build_another_worker_claimed_and_does_not_build_it_too(db, tmp_path, monkeypatch, builds):
    wheel = make_wheel(tmp_path)
    directory = environments.environments_dir() / "k1"
    row = TaskEnvironment.objects.create(key="k1", host=environments.HOST, state=TaskEnvironment.BUILDING,
                                         builder="other-node:1:x", heartbeat_at=timezone.now())

    def other_worker_finishes():  # what the other worker does while this one waits
        builder.build_environment(directory, [str(wheel)], python=django_settings.LAKEFLOW_TASK_PYTHON,
                                  uv=django_settings.LAKEFLOW_UV, log=StepLog(), cache_dir=tmp_path / "cache")
        TaskEnvironment.objects.filter(id=row.id).update(state=TaskEnvironment.READY)

    monkeypatch.setattr(environments, "wait_for_builder", other_worker_finishes)
    log = StepLog()
    assert environments.ensure_built("k1", directory, [str(wheel)], log, keep_going=lambda: True) is False
    assert builds == []
    assert b"Waiting for other-node:1:x" in log.data


def test_a_build_that_fails_while_others_wait_fails_them_with_its_message(db, monkeypatch, builds):
    row = TaskEnvironment.objects.create(key="k2", host=environments.HOST, state=TaskEnvironment.BUILDING,
                                         builder="other-node:1:x", heartbeat_at=timezone.now())
    monkeypatch.setattr(environments, "wait_for_builder", lambda: TaskEnvironment.objects.filter(id=row.id).update(
        state=TaskEnvironment.FAILED, error="error: Distribution not found at: file:///x.whl"))
    with pytest.raises(builder.BuildFailed, match="Distribution not found"):
        environments.ensure_built("k2", environments.environments_dir() / "k2", ["/x.whl"], StepLog(), lambda: True)
    assert builds == []


def test_a_build_whose_builder_stopped_beating_is_taken_over(db, tmp_path, builds):
    wheel = make_wheel(tmp_path)
    lost = timezone.now() - timedelta(seconds=django_settings.LAKEFLOW_LOST_AFTER_SECONDS + 1)
    TaskEnvironment.objects.create(key="k3", host=environments.HOST, state=TaskEnvironment.BUILDING,
                                   builder="dead-node:1:x", heartbeat_at=lost)
    directory = environments.environments_dir() / "k3"
    assert environments.ensure_built("k3", directory, [str(wheel)], StepLog(), lambda: True) is True
    assert TaskEnvironment.objects.get(key="k3").state == TaskEnvironment.READY
    assert len(builds) == 1 and builder.is_built(directory)


def test_a_canceled_task_stops_waiting_for_a_build(db, settings, monkeypatch):
    settings.LAKEFLOW_HEARTBEAT_SECONDS = 0  # look at keep_going on every wait
    monkeypatch.setattr(environments, "wait_for_builder", lambda: None)
    TaskEnvironment.objects.create(key="k4", host=environments.HOST, state=TaskEnvironment.BUILDING,
                                   builder="other-node:1:x", heartbeat_at=timezone.now())
    with pytest.raises(builder.BuildStopped, match="canceled"):
        environments.ensure_built("k4", environments.environments_dir() / "k4", [], StepLog(), lambda: False)


def test_a_build_stopped_by_a_cancel_is_left_for_the_next_worker_not_marked_failed(db, tmp_path, settings):
    settings.LAKEFLOW_HEARTBEAT_SECONDS = 0
    wheel = make_wheel(tmp_path)
    directory = environments.environments_dir() / "k5"
    with pytest.raises(builder.BuildStopped):
        environments.ensure_built("k5", directory, [str(wheel)], StepLog(), keep_going=lambda: False)
    assert not TaskEnvironment.objects.filter(key="k5").exists() and not directory.exists()


# --- garbage collection


def test_environments_unused_for_the_keep_time_are_removed_and_recent_ones_kept(db, tmp_path, settings):
    settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS = 7
    now = timezone.now()
    for key, last_used in (("old", now - timedelta(days=8)), ("recent", now - timedelta(days=1))):
        builder.build_environment(environments.environments_dir() / key, [], python=settings.LAKEFLOW_TASK_PYTHON,
                                  uv=settings.LAKEFLOW_UV, log=StepLog(), cache_dir=tmp_path / "cache")
        TaskEnvironment.objects.create(key=key, host=environments.HOST, state=TaskEnvironment.READY,
                                       builder="b", heartbeat_at=last_used, last_used_at=last_used)
    TaskEnvironment.objects.create(key="failed", host=environments.HOST, state=TaskEnvironment.FAILED,
                                   builder="b", heartbeat_at=now - timedelta(days=9), error="error: x")

    assert environments.remove_unused_environments(now) == 2
    assert list(TaskEnvironment.objects.values_list("key", flat=True)) == ["recent"]
    assert not (environments.environments_dir() / "old").exists()
    assert builder.is_built(environments.environments_dir() / "recent")
    json.loads((environments.environments_dir() / "recent" / builder.COMPLETE).read_text())


def built_row(key, last_used, settings, tmp_path, state=TaskEnvironment.READY):
    builder.build_environment(environments.environments_dir() / key, [], python=settings.LAKEFLOW_TASK_PYTHON,
                              uv=settings.LAKEFLOW_UV, log=StepLog(), cache_dir=tmp_path / "cache")
    return TaskEnvironment.objects.create(key=key, host=environments.HOST, state=state, builder="b",
                                          heartbeat_at=last_used, last_used_at=last_used)


def test_an_environment_a_task_runs_on_is_kept_however_long_the_task_runs(alice, workspace, settings, tmp_path):
    settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS = 7
    now = timezone.now()
    started = now - timedelta(days=30)  # a continuous job's attempt, on this host since then
    built_row("in-use", started, settings, tmp_path)
    attempt = only_attempt(create_run(make_job(alice, [python_task(workspace, environment_key="default")],
                                               environments=environment(str(make_wheel(workspace)))))[0])
    TaskRun.objects.filter(id=attempt.id).update(life_cycle_state="RUNNING", worker_host=environments.HOST,
                                                 started_at=started, setup_duration_ms=5)
    in_use = TaskEnvironment.objects.filter(key="in-use")

    environments.remove_unused_environments(now)
    assert in_use.exists() and builder.is_built(environments.environments_dir() / "in-use")

    TaskRun.objects.filter(id=attempt.id).update(life_cycle_state="TERMINATED")
    environments.remove_unused_environments(now)
    assert not in_use.exists() and not (environments.environments_dir() / "in-use").exists()


def test_with_a_keep_time_under_an_hour_a_task_start_still_counts_as_a_use(db, settings, tmp_path):
    settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS = 0.04  # under an hour: 57.6 minutes
    now = timezone.now()
    directory = environments.environments_dir() / "short"
    built_row("short", now - timedelta(minutes=50), settings, tmp_path)

    assert environments.ensure_built("short", directory, [], StepLog(), lambda: True) is False
    environments.remove_unused_environments(now + timedelta(minutes=10))
    assert TaskEnvironment.objects.get(key="short").state == TaskEnvironment.READY and builder.is_built(directory)


def test_a_task_that_finds_its_environment_claimed_for_removal_waits_then_builds_it_anew(
        db, settings, tmp_path, monkeypatch, builds):
    settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS = 7
    now = timezone.now()
    directory = environments.environments_dir() / "raced"
    row = built_row("raced", now - timedelta(days=8), settings, tmp_path)
    real_is_built = environments.is_built
    looked = []

    def clean_up_claims_it_between_the_look_and_the_touch(path):
        if not looked:  # the clean-up's claim lands right after this task saw READY
            looked.append(True)
            assert TaskEnvironment.objects.filter(id=row.id, state=TaskEnvironment.READY).update(
                state=TaskEnvironment.REMOVING, builder="gc", heartbeat_at=timezone.now())
            return True
        return real_is_built(path)

    def clean_up_finishes():
        builder.remove_environment(directory)
        TaskEnvironment.objects.filter(id=row.id, state=TaskEnvironment.REMOVING).delete()

    monkeypatch.setattr(environments, "is_built", clean_up_claims_it_between_the_look_and_the_touch)
    monkeypatch.setattr(environments, "wait_for_builder", clean_up_finishes)
    assert environments.ensure_built("raced", directory, [], StepLog(), lambda: True) is True
    assert len(builds) == 1 and builder.is_built(directory)
    assert TaskEnvironment.objects.get(key="raced").state == TaskEnvironment.READY


def test_every_node_cleans_up_its_hosts_environments_apart_from_the_clock(db, settings, tmp_path, monkeypatch):
    from django.core.management import call_command

    from runs import clock
    from runs.management.commands import lakeflow_clock

    assert environments.remove_unused_environments not in clock.SLOW_STEPS  # no rmtree on the clock's path
    started = []
    services = []
    monkeypatch.setattr(lakeflow_clock, "start_cleaning_environments", started.append)
    # Other apps' node services (the notification sender) would outlive the test in this process,
    # working on later tests' rows: recorded here, not started.
    monkeypatch.setattr(lakeflow_clock, "start_node_services", lambda should_stop: services.append(should_stop) or [])
    monkeypatch.setattr(lakeflow_clock, "run_clock", lambda should_stop: None)  # a standby clock, say
    monkeypatch.setattr(lakeflow_clock.signal, "signal", lambda signum, handler: None)  # pytest keeps its own
    call_command("lakeflow_clock")
    assert len(started) == 1 and len(services) == 1

    settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS = 7
    built_row("old", timezone.now() - timedelta(days=8), settings, tmp_path)
    passes = iter([False, True])
    environments.clean_environments(lambda: next(passes), every=0)
    assert not TaskEnvironment.objects.exists() and not (environments.environments_dir() / "old").exists()


def test_a_keep_time_of_zero_days_is_refused_at_start():
    found = subprocess.run([sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True,
                           env={**os.environ, "LAKEFLOW_ENVIRONMENT_KEEP_DAYS": "0"}, timeout=120)
    assert found.returncode != 0 and "LAKEFLOW_ENVIRONMENT_KEEP_DAYS=0.0: must be more than 0" in found.stderr


# --- where the setup shows


def test_runs_get_counts_the_build_as_setup_and_the_panel_shows_its_log_apart(alice, workspace, client):
    from api.serializers import task_run_dict

    job = make_job(alice, [python_task(workspace, environment_key="default")],
                   environments=environment(str(make_wheel(workspace))))
    attempt = only_attempt(create_run(job)[0])
    body = task_run_dict(attempt, {}, job_id=job.id, base_url="", now=timezone.now())
    assert body["setup_duration"] >= attempt.setup_duration_ms
    assert body["run_duration"] == body["setup_duration"] + body["execution_duration"] + body["cleanup_duration"]

    client.force_login(alice)
    page = client.get(f"/task-runs/{attempt.id}/?fragment=1").content.decode()
    setup_part = page.split('id="task-setup-log"')[1].split("</pre>")[0]
    assert "Environment from environments[default]" in setup_part
    assert "42 True True" not in setup_part  # the task's own output is in its log, not here


def test_a_task_canceled_during_its_setup_ends_canceled_not_failed(alice, workspace, monkeypatch):
    from runs import worker
    from runs.dispatch import cancel_run

    def canceled_meanwhile(job_settings, task, attempt_dir, keep_going, files):
        cancel_run(TaskRun.objects.get(task_key="t").run_id)
        assert keep_going() is False  # what the build sees at its next heartbeat
        raise environments.EnvironmentFailed("The environment build was stopped: the task was canceled", 5)

    monkeypatch.setattr(worker, "set_up_environment", canceled_meanwhile)
    job = make_job(alice, [python_task(workspace, environment_key="default")],
                   environments=environment(str(make_wheel(workspace))))
    attempt = only_attempt(create_run(job)[0])
    assert attempt.result_state == R.CANCELED and attempt.setup_duration_ms == 5


def test_uv_gets_the_operators_index_settings_and_pips_where_it_has_none_of_its_own():
    environ = {"PIP_INDEX_URL": "https://mirror/simple", "PIP_EXTRA_INDEX_URL": "https://extra/simple",
               "PIP_CERT": "/etc/ca.pem", "UV_INDEX_URL": "https://uv-mirror/simple", "HTTPS_PROXY": "http://proxy:3128",
               "SECRET_KEY": "not for uv", "DATABASE_URL": "postgresql://x"}
    assert builder.index_variables(environ) == {
        "UV_INDEX_URL": "https://uv-mirror/simple",  # uv's own setting wins over pip's
        "UV_INDEX": "https://extra/simple", "SSL_CERT_FILE": "/etc/ca.pem", "HTTPS_PROXY": "http://proxy:3128"}
