"""Tasks get an allow-listed environment, files inside their roots only, and the server reads what
they wrote without following their symlinks; the server's home is its owner's alone. (The switch
to another OS user is shown end to end in tests/e2e/test_task_isolation.py.)"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from lakeflow_site.home import TaskUser, keep_private, task_identity, task_user_notice, usable_task_user, write_private
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.executors.errors import LaunchError
from runs.executors.files import append_for_server
from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import read_attempt_result, read_log_tail
from runs.models import TaskRun
from tests.runs.conftest import alice, make_job  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_task_sees_the_allow_list_and_its_declared_variables_never_the_servers_secrets(alice, monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LAKEFLOW_WAREHOUSES", "LAKEFLOW_ADMIN_PASSWORD", "AWS_SECRET"):
        monkeypatch.setenv(name, f"server-{name}")
    job = make_job(alice, [{"task_key": "t", "environment_variables_key": "etl",
                            "shell_command_task": {"command": "env"}}],
                   environment_variables=[{"environment_variables_key": "etl",
                                           "spec": {"variables": {"TARGET": "prod"}}}])
    run, _ = create_run(job)
    attempt = TaskRun.objects.get(run=run)
    assert attempt.result_state == R.SUCCESS
    seen = dict(line.split("=", 1) for line in open(attempt.log_path).read().splitlines() if "=" in line)
    assert seen["TARGET"] == "prod"
    assert "PATH" in seen and "HOME" in seen
    assert not [name for name in seen if name.startswith(("SECRET", "DATABASE", "REDIS", "AWS", "DJANGO"))]
    assert not [value for value in seen.values() if value.startswith("server-")]


def test_declared_variables_must_name_an_entry_and_keep_off_our_names(api):
    body = {"name": "j", "environment_variables": [{"environment_variables_key": "e",
                                                    "spec": {"variables": {"LAKEFLOW_X": "1", "9x": "1"}}}],
            "tasks": [{"task_key": "t", "environment_variables_key": "other", "shell_command_task": {"command": "env"}}]}
    message = api.post("jobs/create", body).json()["message"]
    assert "environment_variables[0].spec.variables.LAKEFLOW_X: names starting with LAKEFLOW_ belong to this server" in message
    assert "environment_variables[0].spec.variables.9x: a variable name" in message
    assert "tasks[0].environment_variables_key: there is no environment_variables entry 'other'" in message


@pytest.mark.parametrize("given", ["../outside.py", "link.py", "{home}/secret_key", "{outside}"])
def test_task_files_resolve_inside_the_workspace_only(tmp_path, given):
    workspace, home = tmp_path / "ws", tmp_path / "home"
    workspace.mkdir()
    home.mkdir()
    (home / "secret_key").write_text("KEY-MATERIAL")
    (tmp_path / "outside.py").write_text("print('x')")
    (workspace / "link.py").symlink_to(tmp_path / "outside.py")
    given = given.format(home=home, outside=tmp_path / "outside.py")
    with pytest.raises(LaunchError) as refused:
        prepare_attempt({"task_key": "t", "spark_python_task": {"python_file": given}},
                        attempt_dir=tmp_path / "a", workspace_root=workspace, private_roots=(home,))
    assert refused.value.code == "INVALID_RUN_CONFIGURATION"
    assert "KEY-MATERIAL" not in refused.value.message and "print" not in refused.value.message
    assert not (tmp_path / "a").exists()


def test_sql_and_notebook_files_are_confined_the_same_way(tmp_path):
    workspace, home = tmp_path / "ws", tmp_path / "home"
    workspace.mkdir()
    home.mkdir()
    (home / "admin-password.txt").write_text("PASSWORD")
    for task in ({"sql_task": {"warehouse_id": "default", "file": {"path": str(home / "admin-password.txt")}}},
                 {"notebook_task": {"notebook_path": "ws/../home/admin-password.txt"}}):
        with pytest.raises(LaunchError, match="among the server's own files"):
            prepare_attempt({"task_key": "t", **task}, attempt_dir=tmp_path / "a", workspace_root=home.parent,
                            private_roots=(home,), warehouses={"default": "duckdb:///:memory:"})


def test_what_a_task_wrote_is_read_without_following_its_symlinks(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "x.py").write_text("")
    spec = prepare_attempt({"task_key": "t", "spark_python_task": {"python_file": "x.py"}},
                           attempt_dir=tmp_path / "a", workspace_root=workspace)
    private = tmp_path / "server-only.json"
    private.write_text(json.dumps({"stolen": "VALUE", "error": "SERVER SECRET"}))
    os.symlink(private, spec.values_path)
    os.symlink(private, spec.result_path)
    result = read_attempt_result(spec)
    assert result.task_values == {} and result.error is None
    log = tmp_path / "a" / "output.log"
    os.symlink(private, log)
    assert read_log_tail(log) == ("", False)
    os.close(append_for_server(str(log)))  # the server's next write replaces the link, never follows it
    assert not log.is_symlink() and json.loads(private.read_text())["stolen"] == "VALUE"


def test_the_servers_home_is_its_owners_alone_and_older_homes_are_tightened(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "db.sqlite3").write_text("")
    (home / "db.sqlite3").chmod(0o644)
    (home / "logs").mkdir(mode=0o755)
    keep_private(home)
    assert (mode(home), mode(home / "db.sqlite3"), mode(home / "logs")) == (0o700, 0o600, 0o700)
    write_private(home / "admin-password.txt", "pw\n")
    assert mode(home / "admin-password.txt") == 0o600


def test_the_sqlite_database_is_created_owner_only(tmp_path):
    home = tmp_path / "fresh"
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "LAKEFLOW_HOME": str(home),
                                                       "DJANGO_SETTINGS_MODULE": "lakeflow_site.settings",
                                                       "LAKEFLOW_TASK_USER": ""})
    assert done.returncode == 0, done.stderr
    assert mode(home) == 0o700
    assert {p.name: mode(p) for p in home.iterdir() if p.is_file()} == {
        name: 0o600 for name in os.listdir(home) if (home / name).is_file()}
    assert mode(home / "db.sqlite3") == 0o600 and mode(home / "secret_key") == 0o600


@pytest.mark.parametrize("key", ["change-me", "short"])
def test_a_guessable_secret_key_stops_the_server_at_start(tmp_path, key):
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "LAKEFLOW_HOME": str(tmp_path / "h"), "SECRET_KEY": key,
                                            "DJANGO_SETTINGS_MODULE": "lakeflow_site.settings", "LAKEFLOW_TASK_USER": ""})
    assert done.returncode != 0
    assert "SECRET_KEY is too easy to guess" in done.stderr


def test_a_task_user_that_does_not_exist_or_is_root_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="there is no such user"):
        task_identity("no-such-user-here")
    with pytest.raises(ImproperlyConfigured, match="must not be root"):
        task_identity("root")


def test_the_default_task_user_gives_way_with_the_reason_when_it_cannot_run_the_task_python(tmp_path):
    default = TaskUser("nobody", 65534, 65534, "/nonexistent", switch=True, explicit=False)
    fallback = usable_task_user(default, str(tmp_path / "no-python"), tmp_path)
    assert not fallback.switch and "cannot start" in fallback.why_not
    assert "WARNING" in task_user_notice(fallback) and "act as any user" in task_user_notice(fallback)
    with pytest.raises(ImproperlyConfigured, match="LAKEFLOW_TASK_USER=nobody: the OS user 'nobody' cannot start"):
        usable_task_user(TaskUser("nobody", 65534, 65534, "/nonexistent", switch=True, explicit=True),
                         str(tmp_path / "no-python"), tmp_path)


def test_a_delta_log_entry_that_is_a_fifo_or_a_link_never_blocks_the_clock(tmp_path):
    from runs.watch import WatchError, delta_table_version

    log = tmp_path / "table" / "_delta_log"
    log.mkdir(parents=True)
    os.mkfifo(log / f"{1:020d}.json")  # nobody writes it: a plain open() would wait forever
    with pytest.raises(WatchError, match="cannot be read"):
        delta_table_version(str(tmp_path / "table"))
    os.unlink(log / f"{1:020d}.json")
    os.symlink("/dev/zero", log / f"{2:020d}.json")
    with pytest.raises(WatchError, match="cannot be read"):
        delta_table_version(str(tmp_path / "table"))


def test_the_server_replaces_a_fifo_or_a_hard_link_left_where_it_writes_and_refuses_them_where_it_reads(tmp_path):
    from runs.executors.files import open_task_file

    mine = tmp_path / "server-file"
    mine.write_text("SERVER")
    log = tmp_path / "output.log"
    os.link(mine, log)  # as a task could, where hard links to others' files are allowed
    with pytest.raises(OSError):
        open_task_file(str(log))
    os.close(append_for_server(str(log)))
    assert mine.read_text() == "SERVER" and os.stat(log).st_nlink == 1
    os.unlink(log)
    os.mkfifo(log)
    os.close(append_for_server(str(log)))  # does not wait for a reader
    assert stat.S_ISREG(os.lstat(log).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root (CI runs as root)")
def test_handing_the_warehouse_over_never_follows_a_link_the_task_user_planted(tmp_path):
    from lakeflow_site.home import prepare_task_home

    target = tmp_path / "roots-file"
    target.write_text("root's")
    nobody = TaskUser("nobody", 65534, 65534, "/nonexistent", switch=True)
    task_home = tmp_path / "tasks"
    prepare_task_home(tmp_path / "home", task_home, nobody)
    (task_home / "warehouse" / "warehouse.duckdb").symlink_to(target)
    prepare_task_home(tmp_path / "home", task_home, nobody)
    assert os.stat(target).st_uid == 0 and mode(target) != 0o600
    assert os.lstat(task_home / "warehouse").st_uid == 65534


def test_switched_tasks_get_a_home_of_their_own_and_no_user_site_packages(tmp_path):
    nobody = TaskUser("nobody", 65534, 65534, "/nonexistent", switch=True)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "x.py").write_text("")
    spec = prepare_attempt({"task_key": "t", "spark_python_task": {"python_file": "x.py"}},
                           attempt_dir=tmp_path / "a", workspace_root=workspace, user=nobody)
    assert spec.env["HOME"] == str(tmp_path / "a") and spec.env["PYTHONNOUSERSITE"] == "1"
    assert spec.env["USER"] == "nobody"


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root (CI runs as root)")
def test_volumes_and_dbfs_are_the_task_users_and_workspace_code_is_not(tmp_path):
    from lakeflow_site.home import prepare_fs_roots
    from runs.executors.workspace_paths import Roots

    nobody = TaskUser("nobody", 65534, 65534, "/nonexistent", switch=True)
    task_home = tmp_path / "tasks"
    roots = Roots(task_home / "Volumes", task_home / "Workspace", task_home / "dbfs")
    prepare_fs_roots(roots, nobody, tmp_path / "home", task_home)
    for writable in (roots.volumes, roots.dbfs):
        assert (os.lstat(writable).st_uid, mode(writable)) == (65534, 0o700)
    # Another job's task must not rewrite the code a job runs as its run-as identity.
    assert (os.lstat(roots.workspace).st_uid, mode(roots.workspace)) == (0, 0o755)
    # A /Workspace an earlier version handed to the task user is taken back.
    os.chown(roots.workspace, 65534, 65534)
    os.chmod(roots.workspace, 0o700)
    prepare_fs_roots(roots, nobody, tmp_path / "home", task_home)
    assert (os.lstat(roots.workspace).st_uid, mode(roots.workspace)) == (0, 0o755)


@pytest.mark.parametrize("root, words", [
    ("{home}", "overlaps LAKEFLOW_HOME"),
    ("{home}/inner", "overlaps LAKEFLOW_HOME"),
    ("{tmp}", "overlaps LAKEFLOW_HOME"),
    ("{tasks}", "contains LAKEFLOW_TASK_HOME"),
    ("{tasks}/attempts", "among the server's directories"),
    ("{tasks}/warehouse/x", "among the server's directories"),
])
def test_a_databricks_root_that_would_show_tasks_the_servers_files_stops_the_server(tmp_path, root, words):
    from lakeflow_site.home import prepare_fs_roots
    from runs.executors.workspace_paths import Roots

    home, tasks = tmp_path / "home", tmp_path / "tasks"
    bad = root.format(home=home, tmp=tmp_path, tasks=tasks)
    roots = Roots(tmp_path / "ok-volumes", bad, tmp_path / "ok-dbfs")
    with pytest.raises(ImproperlyConfigured, match=words):
        prepare_fs_roots(roots, TaskUser("me", os.geteuid(), os.getegid(), "/", switch=False), home, tasks)


def test_roots_beside_or_inside_the_tasks_area_are_fine(tmp_path):
    from lakeflow_site.home import fs_root_problem

    home, tasks = tmp_path / "home", tmp_path / "tasks"
    assert fs_root_problem("X", tasks / "Volumes", home, tasks) is None
    assert fs_root_problem("X", tmp_path / "data" / "volumes", home, tasks) is None


def test_env_files_in_a_volume_are_read_at_task_start_with_inline_variables_over_them(alice, settings):
    import uuid

    volume = f"/Volumes/main/conf/env_{uuid.uuid4().hex[:8]}"
    local = settings.LAKEFLOW_FS_ROOTS.local_path(volume)
    os.makedirs(local)
    with open(os.path.join(local, "base.env"), "w") as f:
        f.write("# shared\nTARGET=dev\nREGION=eu\n")
    entry = {"environment_variables_key": "etl",
             "spec": {"files": [f"{volume}/base.env"], "variables": {"TARGET": "prod"}}}
    job = make_job(alice, [{"task_key": "t", "environment_variables_key": "etl",
                            "shell_command_task": {"command": "echo $TARGET $REGION"}}],
                   environment_variables=[entry])
    run, _ = create_run(job)
    attempt = TaskRun.objects.get(run=run)
    assert attempt.result_state == R.SUCCESS
    assert open(attempt.log_path).read().strip() == "prod eu"

    missing = make_job(alice, [{"task_key": "t", "environment_variables_key": "etl",
                                "shell_command_task": {"command": "true"}}],
                       environment_variables=[{**entry, "spec": {"files": [f"{volume}/gone.env"]}}])
    run, _ = create_run(missing)
    attempt = TaskRun.objects.get(run=run)
    assert attempt.result_state == R.FAILED
    assert attempt.state_message == f"environment_variables file {volume}/gone.env does not exist"


@pytest.mark.parametrize("name", ["SECRET_KEY", "LAKEFLOW_SECRETS_KEY", "LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY"])
def test_the_servers_secrets_cannot_be_handed_to_tasks(name):
    from lakeflow_site.home import task_environment_names

    with pytest.raises(ImproperlyConfigured, match=name):
        task_environment_names(["TZ_EXTRA", name])


def test_reading_beneath_a_root_never_passes_a_symlink_or_waits_on_a_fifo(tmp_path):
    import errno

    from runs.executors.files import read_beneath

    root = tmp_path / "Volumes"
    (root / "c" / "s" / "v").mkdir(parents=True)
    (root / "c" / "s" / "v" / "ok.env").write_text("A=1\n")
    assert read_beneath(str(root), str(root / "c" / "s" / "v" / "ok.env")) == b"A=1\n"
    outside = tmp_path / "server"
    outside.mkdir()
    (outside / "secret.env").write_text("KEY=server's\n")
    # A directory swapped for a link (to anywhere, even inside the root) is never passed through.
    (root / "c" / "s" / "swapped").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError) as caught:
        read_beneath(str(root), str(root / "c" / "s" / "swapped" / "secret.env"))
    assert caught.value.errno in (errno.ELOOP, errno.ENOTDIR)
    os.mkfifo(root / "c" / "s" / "v" / "fifo.env")
    with pytest.raises(OSError, match="not a regular file"):
        read_beneath(str(root), str(root / "c" / "s" / "v" / "fifo.env"))
    with pytest.raises(OSError, match="not inside"):
        read_beneath(str(root), str(outside / "secret.env"))
