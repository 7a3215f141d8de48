"""What a build leaves is the server's, whatever the task user did meanwhile: owners and modes
made the server's without following a symlink, no symlink out of the environment, no FIFO read
by the server (a planted one fails the task at once instead of hanging its worker), and a build
that cannot be written fails its task with the reason, as the installer's errors do."""

import errno
import os
import stat
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from runs import environments
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.executors import environments as builder
from tests.runs.test_environments import StepLog
from runs.executors.errors import LaunchError
from runs.executors.notebook import _notebook_format
from runs.models import TaskEnvironment, TaskRun
from tests.runs.conftest import make_job
from tests.wheels import make_wheel

AS_ROOT = os.geteuid() == 0
SOMEONE_ELSE = 65534  # nobody: the task user of a root server


@pytest.fixture(autouse=True)
def own_task_home(tmp_path, settings):
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"




def handed_to_someone_else(*paths):
    for path in paths:
        if AS_ROOT:
            os.lchown(path, SOMEONE_ELSE, SOMEONE_ELSE)


def a_tree_the_task_user_left(top):
    """A built environment as a build script might leave it: world-writable, set-uid, its own."""
    (top / "bin").mkdir(parents=True)
    (top / "lib" / "site-packages").mkdir(parents=True)
    os.symlink(django_settings.LAKEFLOW_TASK_PYTHON, top / "bin" / "python")  # as uv makes it
    os.symlink("lib", top / "lib64")
    script = top / "bin" / "tool"
    script.write_text("#!/bin/sh\n")
    pth = top / "lib" / "site-packages" / "x.pth"
    pth.write_text("")
    for path, mode in ((top, 0o777), (top / "bin", 0o777), (top / "lib", 0o775), (script, 0o4777), (pth, 0o666)):
        os.chmod(path, mode)
    handed_to_someone_else(top, top / "bin", top / "lib", top / "lib" / "site-packages", script, pth,
                           top / "bin" / "python", top / "lib64")
    return [top, top / "bin", top / "lib", top / "lib" / "site-packages", script, pth]


def test_a_built_tree_becomes_the_servers_with_no_group_or_other_write_and_no_set_id_bits(tmp_path):
    top = tmp_path / "env"
    paths = a_tree_the_task_user_left(top)

    builder._keep_for_server(top, django_settings.LAKEFLOW_TASK_PYTHON, keep_going=lambda: True)

    for path in [*paths, top / "bin" / "python", top / "lib64"]:
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()), path
        if not stat.S_ISLNK(info.st_mode):
            assert stat.S_IMODE(info.st_mode) & 0o7022 == 0, (path, oct(info.st_mode))
    assert stat.S_IMODE(os.lstat(top / "bin" / "tool").st_mode) == 0o755  # still runnable


def test_a_symlink_out_of_the_environment_fails_the_build_and_is_never_followed(tmp_path):
    top = tmp_path / "env"
    a_tree_the_task_user_left(top)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "file"
    victim.write_text("")
    os.chmod(victim, 0o666)
    handed_to_someone_else(elsewhere, victim)
    os.symlink(elsewhere, top / "lib" / "site-packages" / "planted")

    with pytest.raises(builder.BuildFailed, match="symlink out of the environment.*planted"):
        builder._keep_for_server(top, django_settings.LAKEFLOW_TASK_PYTHON, keep_going=lambda: True)
    info = os.lstat(victim)  # the walk did not go through the link
    assert stat.S_IMODE(info.st_mode) == 0o666
    assert info.st_uid == (SOMEONE_ELSE if AS_ROOT else os.geteuid())


def test_a_fifo_left_in_the_tree_fails_the_build(tmp_path):
    top = tmp_path / "env"
    a_tree_the_task_user_left(top)
    os.mkfifo(top / "bin" / "pipe")
    with pytest.raises(builder.BuildFailed, match="pipe, which is not a regular file"):
        builder._keep_for_server(top, django_settings.LAKEFLOW_TASK_PYTHON, keep_going=lambda: True)


def test_a_real_build_leaves_no_group_or_other_writable_path_and_its_work_directory_is_gone(tmp_path):
    wheel = make_wheel(tmp_path)
    directory = environments.environments_dir() / "k"
    builder.build_environment(directory, [str(wheel)], python=django_settings.LAKEFLOW_TASK_PYTHON,
                              uv=django_settings.LAKEFLOW_UV, log=StepLog(), cache_dir=None)
    assert builder.is_built(directory)
    for parent, directories, files in os.walk(directory):
        for name in (*directories, *files):
            info = os.lstat(os.path.join(parent, name))
            assert stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o7022 == 0, os.path.join(parent, name)
    assert [p.name for p in directory.parent.iterdir()] == ["k"]  # the .building directory went


@pytest.mark.timeout(60)  # a regression would block on the FIFO: fail, do not hang the suite
def test_a_fifo_planted_as_a_wheel_on_a_volume_fails_the_task_at_once(alice, tmp_path, settings):
    libs = Path(settings.LAKEFLOW_FS_ROOTS.volumes) / "main" / "default" / "fifo-libs"
    libs.mkdir(parents=True, exist_ok=True)
    os.mkfifo(libs / "lib-1.0-py3-none-any.whl")
    (tmp_path / "show.py").write_text("print('never')\n")
    job = make_job(alice, [{"task_key": "t", "spark_python_task": {"python_file": str(tmp_path / "show.py")},
                            "libraries": [{"whl": "/Volumes/main/default/fifo-libs/lib-1.0-py3-none-any.whl"}]}])
    attempt = TaskRun.objects.get(run=create_run(job)[0], task_key="t")
    assert (attempt.result_state, attempt.termination_code) == (R.FAILED, "INVALID_RUN_CONFIGURATION")
    assert "must be a regular file" in attempt.state_message and "lib-1.0-py3-none-any.whl" in attempt.state_message
    assert not TaskEnvironment.objects.exists()


@pytest.mark.timeout(60)
def test_a_fifo_planted_as_a_notebook_is_refused_without_being_waited_on(tmp_path):
    os.mkfifo(tmp_path / "nb")
    with pytest.raises(LaunchError, match="must be a regular file"):
        _notebook_format(str(tmp_path / "nb"))


def test_a_file_that_cannot_be_written_fails_the_task_as_a_library_installation_error(alice, tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builder, "_add_base_site_packages", disk_full)
    (tmp_path / "show.py").write_text("print('never')\n")
    job = make_job(alice, [{"task_key": "t", "spark_python_task": {"python_file": str(tmp_path / "show.py")},
                            "libraries": [{"whl": str(make_wheel(tmp_path))}]}])
    attempt = TaskRun.objects.get(run=create_run(job)[0], task_key="t")
    assert (attempt.result_state, attempt.termination_code) == (R.FAILED, "LIBRARY_INSTALLATION_ERROR")
    assert "No space left on device" in attempt.state_message
    assert attempt.setup_duration_ms is not None
    assert TaskEnvironment.objects.get().state == TaskEnvironment.FAILED


def test_a_stray_directory_without_the_completion_marker_is_replaced_by_the_build(tmp_path):
    directory = environments.environments_dir() / "k"
    (directory / "bin").mkdir(parents=True)  # a partial copy, a restore: no lakeflow-environment.json
    (directory / "bin" / "python").write_text("not an interpreter")
    builder.build_environment(directory, [str(make_wheel(tmp_path))], python=django_settings.LAKEFLOW_TASK_PYTHON,
                              uv=django_settings.LAKEFLOW_UV, log=StepLog(), cache_dir=None)
    assert builder.is_built(directory)
    assert os.path.islink(directory / "bin" / "python")


def test_the_builder_keeps_beating_after_uv_while_it_makes_the_tree_the_servers(tmp_path, monkeypatch):
    settling = []
    real = builder._keep_for_server

    def noted(top, python, keep_going):
        settling.append(True)
        return real(top, python, keep_going)

    monkeypatch.setattr(builder, "_keep_for_server", noted)
    directory = environments.environments_dir() / "k"
    # keep_going answers False once the post-build steps began: the build must have asked then.
    with pytest.raises(builder.BuildStopped):
        builder.build_environment(directory, [], python=django_settings.LAKEFLOW_TASK_PYTHON,
                                  uv=django_settings.LAKEFLOW_UV, log=StepLog(), cache_dir=None,
                                  keep_going=lambda: not settling)
    assert settling and not directory.exists()
