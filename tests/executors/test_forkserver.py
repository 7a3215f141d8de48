"""Attempts forked from the warm fork server behave like attempts started as fresh interpreters."""

import os
import signal
import time

import pytest

from runs.executors import forkserver
from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import read_attempt_result, supervise

from .test_supervisor import is_gone, wait_for_file, wait_until_gone


@pytest.fixture(autouse=True)
def forked_only(monkeypatch):
    """These attempts must come from the fork server: falling back to a fresh interpreter fails."""
    def no_fallback(spec, log):
        raise AssertionError("the attempt was not forked from the fork server")

    monkeypatch.setattr("runs.executors.supervisor._popen", no_fallback)


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "ws"
    path.mkdir()
    return path


def run_script(tmp_path, workspace, source, *parameters, name="attempt", env=None, **options):
    (workspace / f"{name}.py").write_text(source)
    task = {"task_key": name, "spark_python_task": {"python_file": f"{name}.py", "parameters": list(parameters)}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / name, workspace_root=workspace, env=env)
    log = tmp_path / name / "log.txt"
    outcome = supervise(spec, log_path=log, timeout_seconds=options.pop("timeout", 60), use_fork_server=True,
                        **options)
    return outcome, read_attempt_result(spec, outcome), log.read_text()


def test_a_forked_attempt_sees_its_own_argv_cwd_environment_and_parent(tmp_path, workspace):
    outcome, result, log = run_script(tmp_path, workspace, (
        "import os, sys\n"
        "print(sys.argv, os.getcwd(), os.environ['LAKEFLOW_TASK_KEY'], __name__, os.getppid())\n"
        "print('to stderr', file=sys.stderr)\n"
        "dbutils.jobs.taskValues.set('answer', 42)\n"), "one", "two")
    server = forkserver._shared
    assert outcome.succeeded
    assert outcome.pid not in (os.getpid(), server.process.pid)
    assert log == (f"[{str(workspace / 'attempt.py')!r}, 'one', 'two'] {workspace} attempt __main__ "
                   f"{server.process.pid}\nto stderr\n")
    assert result.task_values == {"answer": 42}


@pytest.mark.parametrize("source,exit_code,error", [
    ("raise ValueError('boom')", 1, "ValueError: boom"),
    ("import sys; sys.exit(3)", 3, "SystemExit: 3"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL, "Task process was killed by SIGKILL"),
])
def test_failures_report_as_they_do_from_a_fresh_interpreter(tmp_path, workspace, source, exit_code, error):
    outcome, result, _ = run_script(tmp_path, workspace, source)
    assert (outcome.exit_code, result.error) == (exit_code, error)


def test_atexit_handlers_and_running_threads_finish_before_the_attempt_ends(tmp_path, workspace):
    done = tmp_path / "done"
    outcome, _, log = run_script(tmp_path, workspace, (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    open(sys.argv[1], 'w').write('thread ran')\n"
        "threading.Thread(target=late).start()\n"), str(done))
    assert outcome.succeeded
    assert done.read_text() == "thread ran"
    assert log == "atexit ran\n"


def test_files_the_task_left_open_are_written_out_as_a_fresh_interpreter_would(tmp_path, workspace):
    left_open = tmp_path / "left-open.txt"
    outcome, _, _ = run_script(tmp_path, workspace, (
        "import sys\n"
        "f = open(sys.argv[1], 'w')\n"
        "f.write('hello\\n')\n"
        "def helper():\n"
        "    global g\n"
        "    g = open(sys.argv[1] + '.bin', 'wb')\n"
        "    g.write(b'bytes')\n"
        "helper()\n"), str(left_open))
    assert outcome.succeeded
    assert left_open.read_text() == "hello\n"
    assert (tmp_path / "left-open.txt.bin").read_bytes() == b"bytes"


def test_a_timeout_kills_the_forked_attempt_and_its_grandchild(tmp_path, workspace):
    pidfile = tmp_path / "grandchild.pid"
    outcome, _, _ = run_script(tmp_path, workspace, (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"), str(pidfile), timeout=1, kill_grace_seconds=0.5)
    assert outcome.timed_out
    assert wait_until_gone(int(wait_for_file(pidfile)), 3)


def test_a_dead_fork_server_is_replaced_by_a_new_one(tmp_path, workspace):
    assert run_script(tmp_path, workspace, "", name="first")[0].succeeded
    old = forkserver._shared
    old.process.kill()
    old.process.wait()
    outcome, _, log = run_script(tmp_path, workspace, "import os; print(os.getppid())", name="second")
    assert outcome.succeeded
    assert forkserver._shared is not old
    assert log == f"{forkserver._shared.process.pid}\n"


def test_start_up_variables_of_the_attempt_take_effect(tmp_path, workspace):
    # PYTHON* variables act when an interpreter starts: a server started without them cannot fork
    # an attempt that has them, so the attempt gets a server started with them.
    outcome, _, log = run_script(tmp_path, workspace, "import sys; print(sys.flags.dont_write_bytecode)",
                                 env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert outcome.succeeded
    assert log == "1\n"
    outcome, _, log = run_script(tmp_path, workspace, "import sys; print(sys.flags.dont_write_bytecode)",
                                 name="other", env={"PYTHONDONTWRITEBYTECODE": ""})
    assert log == "0\n"


def test_a_task_process_outlives_nothing_when_the_server_is_killed_mid_task(tmp_path, workspace):
    pidfile = tmp_path / "task.pid"
    (workspace / "slow.py").write_text("import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\n"
                                       "time.sleep(60)\n")
    task = {"spark_python_task": {"python_file": "slow.py", "parameters": [str(pidfile)]}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "slow", workspace_root=workspace)
    started = time.monotonic()

    def kill_the_server():
        if pidfile.exists() and pidfile.read_text():
            os.kill(forkserver._shared.process.pid, signal.SIGKILL)
        return False

    outcome = supervise(spec, log_path=tmp_path / "slow.log", timeout_seconds=30, use_fork_server=True,
                        should_cancel=kill_the_server, check_every=0.05)
    assert outcome.exit_code == -signal.SIGKILL
    assert time.monotonic() - started < 10
    assert is_gone(int(pidfile.read_text()))


def test_the_fork_server_keeps_no_attempts_environment_where_later_attempts_could_read_it(tmp_path, workspace):
    # A later task (any job's) could read /proc/<fork server>/environ: the first attempt's
    # variables (its job's, its references' values) must not be in it.
    outcome, _, _ = run_script(tmp_path, workspace, "pass", env={"JOB_SECRET": "first-attempts-own"})
    assert outcome.succeeded
    environ = open(f"/proc/{forkserver._shared.process.pid}/environ", "rb").read()
    assert b"first-attempts-own" not in environ and b"JOB_SECRET" not in environ
    outcome, _, log = run_script(tmp_path, workspace, "import os; print(os.environ.get('JOB_SECRET'))",
                                 name="second", env={"JOB_SECRET": "second-attempts-own"})
    assert log == "second-attempts-own\n"  # each forked attempt still gets its own
