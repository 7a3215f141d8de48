"""A job author cannot act as the server: on a real server (serve on SQLite, and web + qcluster
on Postgres + Redis) started by root with LAKEFLOW_TASK_USER, a task that tries to read or write
the database file, the secret key and the admin password, and to see the server's environment,
fails at every attempt; file paths that lead into the server's files are refused without
showing them."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import drop_database, start_scaleout, start_serve

pytestmark = pytest.mark.e2e

TASK_USER = "lakeflow-e2e-task"
SECRET_KEY = "e2e-" + secrets.token_urlsafe(40)
WAREHOUSE_PASSWORD = "hunter2-" + secrets.token_hex(6)
PROBE = """
    import json, os, pwd, sys
    home, names = sys.argv[1], sys.argv[2:]
    found = {"user": pwd.getpwuid(os.geteuid()).pw_name}
    for name in names:
        path = os.path.join(home, name)
        for mode, done in (("rb", "READ"), ("ab", "WROTE")):
            try:
                with open(path, mode):
                    found[f"{name} {mode}"] = done
            except OSError as exc:
                found[f"{name} {mode}"] = type(exc).__name__
    try:
        found["list home"] = os.listdir(home) and "LISTED"
    except OSError as exc:
        found["list home"] = type(exc).__name__
    found["environment"] = sorted(os.environ)
    print("PROBE " + json.dumps(found), flush=True)
"""
SERVER_SECRETS = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LAKEFLOW_WAREHOUSES", "LAKEFLOW_ADMIN_PASSWORD", "LAKEFLOW_SECRETS_KEY",
                  "DJANGO_SETTINGS_MODULE")


def can_run(user, python):
    try:
        return subprocess.run([python, "-c", "pass"], user=user, extra_groups=[], cwd="/",
                              capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


@pytest.fixture(scope="module")
def task_user_settings():
    """A created, unprivileged OS user for tasks and a Python it can run; the tests run as root
    (as CI does), which is what lets the server switch users at all."""
    if os.geteuid() != 0:
        pytest.skip("switching task processes to another OS user needs the server to run as root")
    if subprocess.run(["getent", "passwd", TASK_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--create-home", "--home-dir", f"/var/lib/{TASK_USER}",
                        "--shell", "/usr/sbin/nologin", TASK_USER], check=True, capture_output=True)
    # The server's own interpreter may live where other users cannot go (pyenv under /root): the
    # runner needs only the standard library, so any Python 3.11 the task user can run will do.
    pythons = [sys.executable, shutil.which("python3.11") or "", "/usr/bin/python3"]
    python = next((p for p in pythons if p and can_run(TASK_USER, p)), None)
    assert python, f"no Python that {TASK_USER} can run among {pythons}"
    return {"LAKEFLOW_TASK_USER": TASK_USER, "LAKEFLOW_TASK_PYTHON": python}


def world_readable_base():
    """Under /tmp, not pytest's own 0700 directory: the task user must reach the workspace."""
    base = Path(tempfile.mkdtemp(prefix="lakeflow-isolation-"))
    base.chmod(0o755)
    return base


@pytest.fixture(scope="module", params=["sqlite", "scaleout"])
def isolated_server(request, task_user_settings):
    base = world_readable_base()
    env = {**task_user_settings,
           "LAKEFLOW_WAREHOUSES": f"pw=postgresql://someone:{WAREHOUSE_PASSWORD}@127.0.0.1:1/nothing"}
    database = None
    if request.param == "sqlite":  # the secret key in a file of LAKEFLOW_HOME
        server = start_serve(base, "serve with a task user", extra_env=env)
    else:  # the secret key in the environment, beside DATABASE_URL and REDIS_URL
        server, database = start_scaleout(base, nodes=1, extra_env={**env, "SECRET_KEY": SECRET_KEY})
    (server.workspace / "probe.py").write_text(textwrap.dedent(PROBE))
    (server.workspace / "probe.py").chmod(0o644)
    yield server
    server.stop()
    if database:
        drop_database(database)
    shutil.rmtree(base, ignore_errors=True)


def run_one(server, task):
    w = server.client()
    # As JSON: the SDK's Task does not know our shell_command_task.
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "isolation", "tasks": [task]})["job_id"]
    run = w.jobs.run_now(job_id=job_id).result(timeout=timedelta(minutes=3))
    return w, run, run.tasks[0]


def secrets_of(server):
    home = Path(server.env["LAKEFLOW_HOME"])
    key_file = home / "secret_key"
    return [server.env["LAKEFLOW_ADMIN_PASSWORD"], WAREHOUSE_PASSWORD,
            key_file.read_text().strip() if key_file.exists() else server.env["SECRET_KEY"]]


def test_the_server_files_are_its_owners_alone(isolated_server):
    home = Path(isolated_server.env["LAKEFLOW_HOME"])
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    for name in ("secret_key", "admin-password.txt", "db.sqlite3"):
        path = home / name
        if path.exists():
            assert oct(path.stat().st_mode & 0o777) == "0o600", name


def test_a_task_can_neither_read_nor_write_the_servers_files_nor_see_its_environment(isolated_server):
    home = isolated_server.env["LAKEFLOW_HOME"]
    names = sorted(os.listdir(home))  # what is really there: the database, the key, the logs...
    assert names
    w, run, task = run_one(isolated_server, {"task_key": "probe", "spark_python_task": {
        "python_file": "probe.py", "parameters": [home, *names]}})
    assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
    logs = w.jobs.get_run_output(task.run_id).logs
    found = json.loads(logs.split("PROBE ", 1)[1].splitlines()[0])
    assert found.pop("user") == TASK_USER
    environment = found.pop("environment")
    assert len(found) == 2 * len(names) + 1 and set(found.values()) == {"PermissionError"}, found
    assert not set(environment) & set(SERVER_SECRETS), environment
    for secret in secrets_of(isolated_server):
        assert secret not in logs


def test_a_shell_task_cannot_change_the_database_either(isolated_server):
    home = isolated_server.env["LAKEFLOW_HOME"]
    target = "db.sqlite3" if (Path(home) / "db.sqlite3").exists() else sorted(os.listdir(home))[0]
    w, run, task = run_one(isolated_server, {"task_key": "sh", "shell_command_task": {
        "command": 'id -un; env; cat "$1"/*; echo x >> "$1/$2"', "parameters": [home, target]}})
    logs = w.jobs.get_run_output(task.run_id).logs
    assert task.state.result_state == jobs.RunResultState.FAILED  # its last command was refused
    assert logs.splitlines()[0] == TASK_USER
    assert "Permission denied" in logs
    for secret in secrets_of(isolated_server):
        assert secret not in logs
    for name in SERVER_SECRETS:
        assert f"\n{name}=" not in logs
    assert isolated_server.client().jobs.get(run.job_id).settings.name == "isolation"  # still itself


@pytest.mark.parametrize("task", [
    {"task_key": "escape", "spark_python_task": {"python_file": "../home/admin-password.txt"}},
    {"task_key": "linked", "spark_python_task": {"python_file": "linked-secret.py"}},
    {"task_key": "sqlfile", "sql_task": {"warehouse_id": "default", "file": {"path": "{home}/secret_key"}}},
])
def test_task_files_that_lead_into_the_servers_files_are_refused_without_showing_them(isolated_server, task):
    home = isolated_server.env["LAKEFLOW_HOME"]
    link = isolated_server.workspace / "linked-secret.py"
    if not link.is_symlink():
        link.symlink_to(Path(home) / "admin-password.txt")
    w, run, attempt = run_one(isolated_server, json.loads(json.dumps(task).replace("{home}", home)))
    assert attempt.state.result_state == jobs.RunResultState.FAILED
    assert "server's own files" in attempt.state.state_message
    output = w.jobs.get_run_output(attempt.run_id)
    shown = f"{attempt.state.state_message} {output.error} {output.error_trace} {output.logs}"
    for secret in secrets_of(isolated_server):
        assert secret not in shown


def test_a_task_environment_is_built_as_the_task_user_and_no_task_can_change_it(isolated_server):
    from tests.wheels import make_wheel

    wheel = make_wheel(isolated_server.workspace)
    wheel.chmod(0o644)
    (isolated_server.workspace / "tamper.py").write_text(
        "import lakeflow_demo, os, pwd, site\n"
        "print('user', pwd.getpwuid(os.geteuid()).pw_name)\n"
        "try:\n"
        "    open(os.path.join(site.getsitepackages()[0], 'planted.pth'), 'w')\n"
        "    print('PLANTED')\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n")
    (isolated_server.workspace / "tamper.py").chmod(0o644)
    w = isolated_server.client()
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={
        "name": "environment as the task user",
        "environments": [{"environment_key": "e", "spec": {"dependencies": [str(wheel)]}}],
        "tasks": [{"task_key": "t", "environment_key": "e", "spark_python_task": {"python_file": "tamper.py"}}]})["job_id"]
    task = w.jobs.run_now(job_id=job_id).result(timeout=timedelta(minutes=3)).tasks[0]
    assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
    assert w.jobs.get_run_output(task.run_id).logs == f"user {TASK_USER}\nrefused PermissionError\n"


def test_a_dbt_task_runs_as_the_task_user_with_its_target_and_profile_in_its_own_directory(isolated_server):
    suffix = secrets.token_hex(3)
    project = isolated_server.workspace / f"shop_{suffix}"
    (project / "seeds").mkdir(parents=True)
    (project / "models").mkdir()
    (project / "dbt_project.yml").write_text(f'name: shop_{suffix}\nversion: "1.0"\nprofile: shop\n')
    (project / "seeds" / f"fruits_{suffix}.csv").write_text("id,name\n1,apple\n")
    (project / "models" / f"names_{suffix}.sql").write_text(
        f"{{{{ config(materialized='table') }}}}\nselect upper(name) as name from {{{{ ref('fruits_{suffix}') }}}}\n")
    for path in [project, *project.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable, not writable, by the task user

    w, _, task = run_one(isolated_server, {"task_key": "models", "dbt_task": {
        "project_directory": project.name, "commands": ["dbt seed", "dbt run"]}})

    assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
    assert "Completed successfully" in w.jobs.get_run_output(task.run_id).logs
    assert sorted(p.name for p in project.iterdir()) == ["dbt_project.yml", "models", "seeds"]  # no target/, logs/
