"""supervise: timeouts and cancels kill the whole tree; logs; results; a killed worker."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runs.executors.launch import LaunchError, LaunchSpec, prepare_attempt
from runs.executors.supervisor import (
    Outcome,
    kill_process_tree,
    read_attempt_result,
    read_log_tail,
    supervise,
)

REPO = Path(__file__).resolve().parents[2]


def shell_spec(tmp_path, command, *parameters):
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    task = {"shell_command_task": {"command": command, "parameters": list(parameters)}}
    return prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace)


def is_gone(pid):
    """No such process, or a zombie (PID 1 here does not reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2:].split()[0] in (b"Z", b"X")


def wait_for_file(path, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was not written")


def wait_until_gone(pid, seconds):
    end = time.monotonic() + seconds
    while not is_gone(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_a_timeout_kills_the_task_and_its_grandchild(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    spec = shell_spec(tmp_path, 'sleep 60 & echo $! > "$1"; wait', str(pidfile))
    started = time.monotonic()
    outcome = supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=0.5)
    assert outcome.timed_out and not outcome.canceled
    assert outcome.exit_code == -signal.SIGTERM
    assert time.monotonic() - started < 5
    assert is_gone(int(pidfile.read_text()))
    assert is_gone(outcome.pid)


def test_a_cancel_kills_the_tree_within_five_seconds_of_the_decision(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    spec = shell_spec(tmp_path, 'sleep 60 & echo $! > "$1"; wait', str(pidfile))
    calls = []
    decided = []

    def should_cancel():
        calls.append(time.monotonic())
        if pidfile.exists() and pidfile.read_text().strip():
            decided.append(time.monotonic())
            return True
        return False

    outcome = supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=30,
                        check_every=0.1, should_cancel=should_cancel)
    assert outcome.canceled and not outcome.timed_out
    assert time.monotonic() - decided[0] < 5
    assert is_gone(int(pidfile.read_text()))
    assert len(calls) < 20  # checked every 0.1 s, not on every poll


def test_a_tree_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    spec = shell_spec(tmp_path, 'trap "" TERM; sleep 60 & echo $! > "$1"; wait', str(pidfile))
    started = time.monotonic()
    outcome = supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=0.3,
                        kill_grace_seconds=0.3)
    elapsed = time.monotonic() - started
    assert outcome.timed_out
    assert outcome.exit_code == -signal.SIGKILL
    assert 0.6 <= elapsed < 5
    assert is_gone(int(pidfile.read_text()))


def test_processes_left_in_the_group_when_the_task_ends_are_killed(tmp_path):
    pidfile = tmp_path / "leftover.pid"
    spec = shell_spec(tmp_path, 'sleep 60 & echo $! > "$1"', str(pidfile))
    outcome = supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=30)
    assert outcome.succeeded
    assert wait_until_gone(int(pidfile.read_text()), 2)


def test_heartbeats_and_on_start_are_called_while_the_task_runs(tmp_path):
    spec = shell_spec(tmp_path, "sleep 0.4")
    beats, started = [], []
    outcome = supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=None,
                        heartbeat_every=0.1, on_heartbeat=lambda: beats.append(1),
                        on_start=started.append)
    assert started == [outcome.pid]
    assert 2 <= len(beats) <= 5
    assert outcome.succeeded and 400 <= outcome.duration_ms < 3000


def test_a_raising_callback_kills_the_tree_and_propagates(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    spec = shell_spec(tmp_path, 'sleep 60 & echo $! > "$1"; wait', str(pidfile))

    def should_cancel():
        if pidfile.exists() and pidfile.read_text().strip():
            raise ConnectionError("database went away")
        return False

    with pytest.raises(ConnectionError):
        supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=30, check_every=0.05,
                  should_cancel=should_cancel, kill_grace_seconds=0.5)
    assert is_gone(int(pidfile.read_text()))


def test_the_log_is_appended_to_not_replaced(tmp_path):
    log_path = tmp_path / "logs" / "log.txt"
    log_path.parent.mkdir()
    log_path.write_text("earlier\n")
    supervise(shell_spec(tmp_path, "echo later"), log_path=log_path, timeout_seconds=10)
    assert log_path.read_text() == "earlier\nlater\n"


def test_a_missing_executable_is_a_launch_error_written_to_the_log(tmp_path):
    spec = dataclasses.replace(shell_spec(tmp_path, "true"), argv=["/no/such/binary"])
    with pytest.raises(LaunchError) as caught:
        supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=10)
    assert caught.value.code == "RESOURCE_NOT_FOUND"
    assert "/no/such/binary" in (tmp_path / "log.txt").read_text()


def test_kill_process_tree_on_a_vanished_group_returns_at_once(tmp_path):
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    started = time.monotonic()
    kill_process_tree(proc.pid, grace_seconds=2)
    assert time.monotonic() - started < 0.5


def test_read_log_tail_keeps_the_last_bytes_and_says_it_truncated(tmp_path):
    log_path = tmp_path / "log.txt"
    log_path.write_bytes(b"".join(b"line %04d\n" % i for i in range(1000)))
    text, truncated = read_log_tail(log_path, max_bytes=20)
    assert (text, truncated) == ("line 0998\nline 0999\n", True)
    assert read_log_tail(log_path) == (log_path.read_text(), False)


def test_read_log_tail_does_not_start_inside_a_multibyte_character(tmp_path):
    log_path = tmp_path / "log.txt"
    log_path.write_bytes("aé€".encode())  # 1 + 2 + 3 bytes
    assert read_log_tail(log_path, max_bytes=4) == ("€", True)
    assert read_log_tail(tmp_path / "missing.txt") == ("", False)


def test_read_attempt_result_tolerates_missing_and_garbled_files(tmp_path):
    spec = LaunchSpec(argv=["x"], cwd=str(tmp_path), env={},
                      result_path=str(tmp_path / "result.json"),
                      values_path=str(tmp_path / "values.json"), spec_path=str(tmp_path / "s"))
    assert read_attempt_result(spec).error is None
    (tmp_path / "result.json").write_text('{"error": "ValueError: bo')
    (tmp_path / "values.json").write_text("[1, 2]")
    result = read_attempt_result(spec)
    assert (result.error, result.task_values) == (None, {})
    killed = Outcome(exit_code=-9, timed_out=False, canceled=False, pid=1, duration_ms=5)
    assert read_attempt_result(spec, killed).error == "Task process was killed by SIGKILL"
    timed_out = dataclasses.replace(killed, timed_out=True)
    assert read_attempt_result(spec, timed_out).error is None


WORKER = """
import json, os, subprocess, sys, time
from pathlib import Path
from runs.executors.launch import LaunchSpec
from runs.executors.supervisor import supervise
spec = LaunchSpec(**json.loads(sys.argv[1]))
if sys.argv[3] in ("supervise", "fork"):
    supervise(spec, log_path=Path(sys.argv[2]), timeout_seconds=60, use_fork_server=sys.argv[3] == "fork")
else:  # a plain spawn: only the runner's own prctl can take the task down
    env = {**spec.env, "LAKEFLOW_SUPERVISOR_PID": str(os.getpid())}
    subprocess.Popen(spec.argv, cwd=spec.cwd, env=env)
    time.sleep(60)
"""


@pytest.mark.parametrize("kind,spawn", [("runner", "supervise"), ("shell", "supervise"),
                                        ("runner", "plain"), ("runner", "fork")])
def test_a_sigkilled_worker_takes_its_task_process_with_it(tmp_path, kind, spawn):
    pidfile = tmp_path / "task.pid"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    if kind == "runner":
        (workspace / "task.py").write_text(
            "import os, sys, time\n"
            "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
            "time.sleep(60)\n")
        task = {"spark_python_task": {"python_file": "task.py", "parameters": [str(pidfile)]}}
    else:
        task = {"shell_command_task": {"command": 'echo $$ > "$1"; sleep 60; :',
                                       "parameters": [str(pidfile)]}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(dataclasses.asdict(spec)),
         str(tmp_path / "log.txt"), spawn],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        task_pid = int(wait_for_file(pidfile))
        assert not is_gone(task_pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert wait_until_gone(task_pid, 3)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
