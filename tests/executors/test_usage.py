"""What an attempt's process tree consumed, measured by its supervisor on both launch paths: a
fresh interpreter (the worker reaps it and samples the tree) and a fork of the fork server (which
reaps the whole group and reports it). Real processes; CPU is burned as CPU time, not wall time.

The file tests need the temporary directory on a block device (ext4 here): tmpfs has no storage
layer for the kernel to count.
"""

import os
import sys

import pytest

from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import supervise
from runs.executors.usage import Figures, TreeMeter

MB = 10**6
PATHS = ["fork", "popen"]

BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"


@pytest.fixture
def path(request, monkeypatch):
    """Which launch path the attempt takes; a fork that fell back to a fresh interpreter fails."""
    if request.param == "fork":
        def no_fallback(spec, log):
            raise AssertionError("the attempt was not forked from the fork server")

        monkeypatch.setattr("runs.executors.supervisor._popen", no_fallback)
    return request.param


def attempt(tmp_path, path, source, *parameters, **options):
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    (workspace / "task.py").write_text(source)
    task = {"task_key": "task", "spark_python_task": {"python_file": "task.py", "parameters": list(parameters)}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace)
    outcome = supervise(spec, log_path=tmp_path / "attempt" / "log.txt", timeout_seconds=120,
                        use_fork_server=path == "fork", **options)
    assert not outcome.timed_out, (tmp_path / "attempt" / "log.txt").read_text()
    return outcome


def until_file(marker):
    """should_cancel for an attempt that holds what it took until the test has seen it: the
    cancel comes once the task wrote ``marker``, so the figures hold at a known moment."""
    return dict(should_cancel=marker.exists, check_every=0.01)


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_task_that_burns_half_a_cpu_second_reports_it(tmp_path, path):
    outcome = attempt(tmp_path, path, BURN.format(seconds=0.5))
    assert outcome.succeeded
    assert 0.5 <= outcome.usage.cpu_seconds < 1.5  # its interpreter's start on top; never counted twice


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_grandchild_the_task_waited_for_counts(tmp_path, path):
    outcome = attempt(tmp_path, path, (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {BURN.format(seconds=0.3)!r}], check=True)\n"))
    assert outcome.succeeded
    assert outcome.usage.cpu_seconds >= 0.3


def test_a_grandchild_still_burning_when_the_task_ends_counts_until_it_is_killed(tmp_path, path="fork"):
    # Exact on the fork path (the fork server reaps the orphan); a fresh interpreter's supervisor
    # counts it only if a sample saw it, which depends on how soon it runs (not tested).
    marker = tmp_path / "burned"
    outcome = attempt(tmp_path, path, (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', sys.argv[2]])\n"
        "while not os.path.exists(sys.argv[1]): time.sleep(0.01)\n"),
        str(marker), BURN.format(seconds=0.3) + f"open({str(marker)!r}, 'w').close()\nwhile True: pass\n")
    assert outcome.succeeded
    assert outcome.usage.cpu_seconds >= 0.3


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_canceled_task_counts_what_its_tree_used_before_the_kill(tmp_path, path):
    marker = tmp_path / "burned"
    outcome = attempt(tmp_path, path, (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', sys.argv[2]])\n"
        "time.sleep(600)\n"),
        str(marker), BURN.format(seconds=0.3) + f"open({str(marker)!r}, 'w').close()\nwhile True: pass\n",
        **until_file(marker))
    assert outcome.canceled
    assert outcome.usage.cpu_seconds >= 0.3


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_an_allocation_of_100_mb_shows_in_peak_memory(tmp_path, path):
    marker = tmp_path / "allocated"
    held = attempt(tmp_path, path, (
        "import sys, time\n"
        "block = bytearray(100 * 10**6)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"  # every page resident
        "open(sys.argv[1], 'w').close()\n"
        "time.sleep(600)\n"), str(marker), **until_file(marker))
    noop = attempt(tmp_path, path, "")
    assert held.canceled and noop.succeeded
    assert held.usage.peak_memory_bytes >= 100 * MB
    assert held.usage.peak_memory_bytes - noop.usage.peak_memory_bytes >= 95 * MB


def test_a_forked_task_that_allocates_and_exits_at_once_shows_its_peak(tmp_path, path="fork"):
    # No sample sees it: the fork server's rusage of the attempt does.
    outcome = attempt(tmp_path, path, (
        "block = bytearray(100 * 10**6)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"))
    assert outcome.succeeded
    assert outcome.usage.peak_memory_bytes >= 100 * MB


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_file_write_of_20_mb_shows_in_written_bytes(tmp_path, path):
    outcome = attempt(tmp_path, path, (
        "import os, sys\n"
        "with open(sys.argv[1], 'wb') as f:\n"
        "    f.write(os.urandom(20 * 10**6))\n"
        "    f.flush()\n"
        "    os.fsync(f.fileno())\n"), str(tmp_path / "out.bin"))
    assert outcome.succeeded
    assert 20 * MB <= outcome.usage.written_bytes < 25 * MB
    assert (tmp_path / "out.bin").stat().st_size == 20 * MB


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_file_read_from_disk_shows_in_read_bytes(tmp_path, path):
    data = tmp_path / "in.bin"
    with open(data, "wb") as f:
        f.write(os.urandom(20 * MB))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # so the task reads the disk
    outcome = attempt(tmp_path, path, "import sys\nopen(sys.argv[1], 'rb').read()\n", str(data))
    assert outcome.succeeded
    assert outcome.usage.read_bytes >= 20 * MB


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_measuring_can_be_turned_off(tmp_path, path):
    outcome = attempt(tmp_path, path, "", measure_usage=False)
    assert outcome.succeeded and outcome.usage is None


def test_a_shell_command_is_measured_too(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    task = {"shell_command_task": {"command": f"{sys.executable} -c \"{BURN.format(seconds=0.3)}\"; true"}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace)
    outcome = supervise(spec, log_path=tmp_path / "log.txt", timeout_seconds=60)
    assert outcome.succeeded
    assert outcome.usage.cpu_seconds >= 0.3  # bash's rusage holds the interpreter it waited for


def test_an_exec_that_kept_the_workers_high_water_mark_is_not_taken_for_the_tasks_peak():
    # exec keeps the ru_maxrss of the fork it replaced: the worker's size, not the task's.
    meter = TreeMeter(pid=os.getpid(), inherited_rss=300 * MB)
    meter.peak_bytes = 12 * MB  # what the samples saw
    inherited = meter.from_leader(Figures(cpu_seconds=0.1, max_rss_bytes=290 * MB), killed=False)
    own = meter.from_leader(Figures(cpu_seconds=0.1, max_rss_bytes=400 * MB), killed=False)
    assert (inherited.peak_memory_bytes, own.peak_memory_bytes) == (12 * MB, 400 * MB)


def test_a_peak_that_neither_a_sample_nor_the_rusage_shows_is_unknown_not_zero():
    meter = TreeMeter(pid=os.getpid(), inherited_rss=300 * MB)
    assert meter.from_leader(Figures(cpu_seconds=0.001, max_rss_bytes=290 * MB), killed=False).peak_memory_bytes is None


def test_a_garbled_report_from_the_fork_server_counts_as_unmeasured():
    good = {"cpu_seconds": 1.5, "read_bytes": 0, "written_bytes": 4096, "max_rss_bytes": 10**7}
    assert Figures.of_report(good) == Figures(1.5, 0, 4096, 10**7)
    for bad in (None, [], {**good, "cpu_seconds": "1"}, {**good, "read_bytes": -1}, {**good, "written_bytes": True}):
        assert Figures.of_report(bad) is None


def test_sampling_a_process_that_is_gone_or_going_finds_nothing_and_raises_nothing(monkeypatch):
    import subprocess

    from runs.executors import usage

    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid names nothing now
    meter = TreeMeter(pid=gone.pid)
    meter.sample()
    assert meter.seen == {} and meter.from_leader(Figures(cpu_seconds=0.001), killed=False).cpu_seconds == 0.001

    # Files cut short or emptied as the process exits between two reads.
    stat = usage._read(f"/proc/{os.getpid()}/stat")
    for cut in (b"", stat[:20], stat[:stat.rfind(b")") + 12], stat.replace(b" 0 ", b" x ", 1)):
        monkeypatch.setattr(usage, "_read", lambda path, cut=cut: cut if path.endswith("/stat") else b"VmHWM:")
        meter = TreeMeter(pid=os.getpid())
        meter.sample()
        assert meter.seen == {}
