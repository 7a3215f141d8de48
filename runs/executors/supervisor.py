"""Start one attempt process and watch it until it ends, times out or is canceled (in the worker).

The attempt runs in its own session (so its process group holds the whole tree it starts),
writes stdout and stderr into one log file opened here, and reports through the files named in
its ``LaunchSpec`` (``read_attempt_result``).

The parent-death signal: the child asks the kernel for SIGKILL when the worker dies
(``PR_SET_PDEATHSIG``, Linux), so a SIGKILLed worker leaves no task process running. The signal
goes to the direct child only: processes that the task starts itself (bash's children, a
script's subprocesses) do not get it, and a grandchild that detaches (``setsid``, a daemon)
also leaves the process group. After a worker dies, the reaper can kill the rest with
``kill_process_tree(pid)`` on the same host, using the pid that ``on_start`` reported.

No threads: the worker is a forked django-q2 process, and ``preexec_fn`` is only safe in a
process without threads. The parent-death signal is tied to the *thread* that started the
child, so call ``supervise`` from the worker's main thread.
"""

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .dbutils import MAX_TASK_VALUE_BYTES
from .files import append_for_server, open_task_file, read_task_file
from .forkserver import ForkServer, ForkServerGone, libc_prctl, shared_fork_server
from .launch import LaunchError, LaunchSpec
from .runner import PDEATHSIG_SET_ENV, SUPERVISOR_PID_ENV
from .usage import FIRST_SAMPLE_SECONDS, SAMPLE_GROWTH, Figures, TreeMeter, Usage, resident_bytes

MAX_LOG_BYTES = 5 * 1024 * 1024
"""``get-output`` returns the last 5 MB of the log."""

_PR_SET_PDEATHSIG = 1
_KILL_POLL_SECONDS = 0.02
_AFTER_SIGKILL_SECONDS = 2.0


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # negative: killed by that signal (subprocess convention)
    timed_out: bool
    canceled: bool
    pid: int  # also the process group id
    duration_ms: int
    usage: Usage | None = None  # what its process tree consumed (None: not measured)
    ended_at: float | None = None  # time.monotonic() when the process had ended (or was killed)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.canceled


@dataclass(frozen=True)
class AttemptResult:
    error: str | None = None
    error_trace: str | None = None
    error_code: str | None = None
    notebook_result: str | None = None
    notebook_result_truncated: bool = False
    task_values: dict = field(default_factory=dict)
    sql_output: dict | None = None  # sql_task: the query_output block with the result preview
    sql_ran: dict | None = None  # sql_task: {warehouse_id, dialect, statements, row_counts, schema}
    declared_lineage: list = field(default_factory=list)  # dbutils.lineage.record: [{"reads", "writes"}]
    dbt_ran: dict | None = None  # dbt_task: {warehouse_id, writes, views, reads} of the nodes that succeeded


def supervise(
    spec: LaunchSpec,
    *,
    log_path: Path,
    timeout_seconds: float | None,
    poll_interval: float = 0.1,
    check_every: float = 0.5,
    should_cancel: Callable[[], bool] = lambda: False,
    heartbeat_every: float = 5.0,
    first_heartbeat_after: float | None = None,
    on_heartbeat: Callable[[], None] = lambda: None,
    on_start: Callable[[int], None] = lambda pid: None,
    kill_grace_seconds: float = 2.0,
    use_fork_server: bool = False,
    measure_usage: bool = True,
) -> Outcome:
    """Run the attempt to its end; on timeout or cancel kill its whole process tree.

    ``timeout_seconds`` of None or 0 means no timeout (as in the Jobs API). ``should_cancel`` is
    called at most every ``check_every`` seconds and ``on_heartbeat`` every ``heartbeat_every``
    seconds (the first time after ``first_heartbeat_after``, if given). If a callback raises, the tree is killed and the exception propagates. Whatever the
    task leaves running in its process group when it exits is killed too. With
    ``use_fork_server``, a runner attempt is forked from this process's fork server (started on
    first use; see ``forkserver``) rather than started as a fresh interpreter. With
    ``measure_usage``, the outcome says what the process tree consumed (``usage.py``): samples of
    /proc while it runs, from 1 or 20 ms after the start, growing apart to every ``poll_interval``.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(append_for_server(str(log_path)), "ab", buffering=0) as log:
        started = time.monotonic()
        process = None
        if use_fork_server and spec.spec_path is not None:
            process = _fork(spec, log)
        if process is None:
            process = _popen(spec, log)

    timed_out = canceled = False
    meter = TreeMeter(process.pid, process.inherited_rss) if measure_usage else None
    try:
        on_start(process.pid)
        deadline = started + timeout_seconds if timeout_seconds else None
        next_check = started + check_every
        next_beat = started + (heartbeat_every if first_heartbeat_after is None else first_heartbeat_after)
        sample_every = FIRST_SAMPLE_SECONDS[process.kind]
        next_sample = started + sample_every if meter else float("inf")
        while True:
            now = time.monotonic()
            wake = min(next_check, next_beat, next_sample, deadline if deadline is not None else next_beat)
            if process.wait_for_exit(max(0.0, min(poll_interval, wake - now))):
                break
            now = time.monotonic()
            if now >= next_sample:
                meter.sample()
                sample_every = min(sample_every * SAMPLE_GROWTH, poll_interval)
                next_sample = now + sample_every
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            if now >= next_check:
                next_check = now + check_every
                if should_cancel():
                    canceled = True
                    break
            if now >= next_beat:
                next_beat = now + heartbeat_every
                on_heartbeat()
        if meter and not process.reaps_group:
            meter.sample()  # the last look at what the kill below would take away unmeasured
        if timed_out or canceled:
            kill_process_tree(process.pid, kill_grace_seconds)
        ended_at = time.monotonic()
        exit_code = process.reap()
        usage = process.usage(meter, killed=timed_out or canceled) if meter else None
    except BaseException:
        kill_process_tree(process.pid, kill_grace_seconds)
        process.reap()
        raise
    finally:
        process.close()
    return Outcome(
        exit_code=exit_code,
        timed_out=timed_out,
        canceled=canceled,
        pid=process.pid,
        duration_ms=int((time.monotonic() - started) * 1000),
        usage=usage,
        ended_at=ended_at,
    )


class _StartedProcess:
    """An attempt process this worker started itself; ``reap`` returns its exit code."""

    kind = "fresh"
    reaps_group = False  # only the leader is ours to reap: the rest of the tree is sampled

    def __init__(self, proc: subprocess.Popen, inherited_rss: int = 0):
        self.pid = proc.pid  # also the process group id
        self.proc = proc
        self.pidfd = _pidfd_open(proc.pid)
        self.inherited_rss = inherited_rss  # ours when it was forked: its ru_maxrss starts there
        self.figures = None

    def wait_for_exit(self, timeout: float) -> bool:
        return _wait_for_exit(self.pid, self.pidfd, timeout)

    def reap(self) -> int:
        # The leader is a zombie we have not reaped yet, so its pid still names this group.
        _signal_group(self.pid, signal.SIGKILL)
        if self.proc.returncode is None:
            try:  # wait4, not Popen.wait: its rusage holds the descendants it reaped
                _, status, rusage = os.wait4(self.pid, 0)
            except ChildProcessError:  # reaped elsewhere: Popen knows what to report
                return self.proc.wait()
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.figures = Figures.of_rusage(rusage)
        return self.proc.returncode

    def usage(self, meter: TreeMeter, killed: bool) -> Usage | None:
        return meter.from_leader(self.figures, killed=killed)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)


class _ForkedProcess:
    """An attempt forked by the fork server, which reaps it and its group and reports the code
    and what the group consumed."""

    kind = "fork"
    reaps_group = True
    inherited_rss = 0  # forked, never exec'd: its ru_maxrss is its own RSS from the start

    def __init__(self, server: ForkServer, pid: int):
        self.pid = pid
        self.server = server
        self.exit_code = None
        self.report = None

    def wait_for_exit(self, timeout: float) -> bool:
        poller = select.poll()
        poller.register(self.server.fileno(), select.POLLIN)
        return bool(poller.poll(timeout * 1000))

    def reap(self) -> int:
        if self.exit_code is None:
            self.exit_code, self.report = self.server.ended()
        if self.exit_code is None:  # the server died: its attempt dies with it (PDEATHSIG); make sure
            kill_process_tree(self.pid, 0)
            self.exit_code = -signal.SIGKILL
        return self.exit_code

    def usage(self, meter: TreeMeter, killed: bool) -> Usage | None:
        return meter.from_group(Figures.of_report(self.report))

    def close(self) -> None:
        pass


def _popen(spec: LaunchSpec, log) -> _StartedProcess:
    worker_pid = os.getpid()
    prctl = libc_prctl()
    env = dict(spec.env)
    if spec.spec_path is not None:  # only the runner reads these
        env[SUPERVISOR_PID_ENV] = str(worker_pid)
        if prctl is not None:
            env[PDEATHSIG_SET_ENV] = "1"
    inherited_rss = resident_bytes()
    try:
        proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_child_setup(worker_pid, prctl),  # after the switch of user: it would clear it
            **run_as(spec.user),
        )
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        log.write(f"Could not start the task process: {exc}\n".encode())
        raise LaunchError("RESOURCE_NOT_FOUND", f"Could not start the task process: {exc}") from exc
    return _StartedProcess(proc, inherited_rss)


def _fork(spec: LaunchSpec, log) -> _ForkedProcess | None:
    """The attempt forked from the fork server, or None if it could not be (start it anew)."""
    if threading.current_thread() is not threading.main_thread():
        # The server's parent-death signal follows the thread that started it, and one server
        # serves one attempt at a time: worker processes run attempts on their main thread.
        return None
    python, *_, runner_path, spec_path = spec.argv
    try:
        server = shared_fork_server(python, spec.env, runner_path, spec.user)
    except OSError:
        return None
    env = {**spec.env, SUPERVISOR_PID_ENV: str(server.process.pid), PDEATHSIG_SET_ENV: "1"}
    try:
        return _ForkedProcess(server, server.spawn([runner_path, spec_path], spec.cwd, env, log.fileno()))
    except ForkServerGone:  # it stopped itself; the next attempt starts a new one
        return None


def started_by(pid: int, moment: float, slack: float = 2.0) -> bool:
    """Whether process group ``pid`` may still be the one whose leader was seen alive at ``moment``
    (seconds since the epoch), so that a caller who is not its parent may kill it.

    Pids are reused: once an old task's group is gone its number may name any new process group,
    such as a database server's connection backend (each one leads a session of its own); a root
    reaper that killed it would take the whole database down. A process of that number started
    after ``moment`` is such a stranger. No process of that number, yet a group of it: the old
    leader's group outlived it, and a group's number is not given out again while it exists.
    ``slack`` covers the boot time's rounding to the second (``/proc/stat``'s btime).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return _group_exists(pid)
    except OSError:  # cannot tell (no /proc, hidepid): not ours to kill
        return False
    try:
        with open("/proc/stat", "rb") as f:
            booted = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
    except (OSError, StopIteration):
        return False
    start_ticks = int(stat[stat.rfind(b")") + 2:].split()[19])  # field 22 of proc(5): starttime
    return booted + start_ticks / os.sysconf("SC_CLK_TCK") <= moment + slack


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def kill_process_tree(pgid: int, grace_seconds: float = 2.0) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after ``grace_seconds``; wait for it.

    Returns once no live process is left in the group (zombies waiting for their parent do not
    count), or about two seconds after the SIGKILL if the kernel is slow to deliver it.
    A caller that is not the group leader's parent must make sure the pid still belongs to the
    task (pids are reused).
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return
    if _wait_until_gone(pgid, grace_seconds):
        return
    _signal_group(pgid, signal.SIGKILL)
    _wait_until_gone(pgid, _AFTER_SIGKILL_SECONDS)


def read_log_tail(path: Path, max_bytes: int = MAX_LOG_BYTES) -> tuple[str, bool]:
    """The last ``max_bytes`` of the log as text, and whether earlier bytes were left out."""
    try:
        with open_task_file(str(path), max_bytes=2**62) as f:
            size = f.seek(0, os.SEEK_END)
            truncated = size > max_bytes
            f.seek(max(0, size - max_bytes))
            data = f.read(max_bytes)
    except OSError:  # gone, or not a regular file any more (its task may have replaced it)
        return "", False
    if truncated:
        # Start at a character boundary, not inside a multi-byte UTF-8 sequence.
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    return data.decode("utf-8", errors="replace"), truncated


def read_attempt_result(spec: LaunchSpec, outcome: Outcome | None = None) -> AttemptResult:
    """What the attempt reported. Missing or garbled files count as "nothing reported".

    With ``outcome``, a failed attempt that reported no error (a shell command, a killed or
    crashed interpreter) gets one from its exit status. Timeouts and cancels get none: the
    worker words those itself.
    """
    result = _read_json_object(spec.result_path)
    error = _string_or_none(result.get("error"))
    if error is None and outcome is not None and not outcome.succeeded:
        if not (outcome.timed_out or outcome.canceled):
            error = _exit_status_error(spec, outcome.exit_code)
    return AttemptResult(
        error=error,
        error_trace=_string_or_none(result.get("error_trace")),
        error_code=_string_or_none(result.get("error_code")),
        notebook_result=_string_or_none(result.get("notebook_result")),
        notebook_result_truncated=result.get("notebook_result_truncated") is True,
        task_values=_valid_task_values(_read_json_object(spec.values_path)),
        sql_output=result.get("sql_output") if isinstance(result.get("sql_output"), dict) else None,
        sql_ran=_sql_ran(result.get("sql_ran")),
        declared_lineage=read_declared_lineage(spec.lineage_path),
        dbt_ran=_dbt_ran(result.get("dbt_ran")),
    )


def _sql_ran(value) -> dict | None:
    """The statements a sql_task reported it ran, if the report has the expected shape."""
    if not isinstance(value, dict) or value.get("dialect") not in ("duckdb", "postgres"):
        return None
    statements = value.get("statements")
    if not isinstance(statements, list) or not isinstance(value.get("warehouse_id"), str):
        return None
    texts = [text for text in statements if isinstance(text, str)]
    counts = value.get("row_counts") if isinstance(value.get("row_counts"), list) else []
    schema = value.get("schema") if isinstance(value.get("schema"), dict) else {}
    return {"warehouse_id": value["warehouse_id"], "dialect": value["dialect"], "statements": texts,
            "row_counts": [n if isinstance(n, int) and not isinstance(n, bool) else None for n in counts][:len(texts)],
            "schema": {table: columns for table, columns in schema.items()
                       if isinstance(table, str) and isinstance(columns, dict)}}


def _dbt_ran(value) -> dict | None:
    """The tables a dbt_task reported its models wrote and read, if the report has the expected shape."""
    if not isinstance(value, dict) or not isinstance(value.get("warehouse_id"), str):
        return None
    report = {"warehouse_id": value["warehouse_id"]}
    for name in ("writes", "views", "reads"):
        tables = value.get(name) if isinstance(value.get(name), list) else []
        report[name] = [table for table in tables if isinstance(table, str) and table.strip()][:MAX_DECLARED_NAMES]
    return report


MAX_DECLARED_LINEAGE_BYTES = 1024 * 1024
MAX_DECLARED_NAMES = 1000


def read_declared_lineage(path) -> list:
    """What the task declared with dbutils.lineage.record (JSON lines of {"reads": [...],
    "writes": [...]}): names that are strings, at most MAX_DECLARED_NAMES; the rest is dropped."""
    if not path:
        return []
    import json

    try:
        raw = read_task_file(path, MAX_DECLARED_LINEAGE_BYTES)  # never via a link the task planted
    except OSError:
        return []
    declared, names = [], 0
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        kept = {direction: [name for name in entry.get(direction) or [] if isinstance(name, str) and name.strip()]
                for direction in ("reads", "writes") if isinstance(entry.get(direction), list)}
        names += sum(map(len, kept.values()))
        if names > MAX_DECLARED_NAMES:
            break
        declared.append(kept)
    return declared


def _exit_status_error(spec: LaunchSpec, exit_code: int | None) -> str | None:
    what = "Command" if spec.spec_path is None else "Task process"
    if exit_code is None:
        return None
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"{what} was killed by {name}"
    return f"{what} exited with code {exit_code}"


def _read_json_object(path: str) -> dict:
    """A report the task process wrote: read without following a symlink it may have planted."""
    import json

    try:
        data = json.loads(read_task_file(path).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _valid_task_values(values: dict) -> dict:
    """Keep what ``taskValues.set`` would accept; a shell task writes the file by hand."""
    import json

    kept = {}
    for key, value in values.items():
        if not key:
            continue
        try:
            size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))
        except ValueError:
            continue
        if size <= MAX_TASK_VALUE_BYTES:
            kept[key] = value
    return kept


def _string_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


def run_as(user) -> dict:
    """Popen arguments that start the process as ``user`` (no supplementary groups: not root's)."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def _child_setup(worker_pid: int, prctl):
    def setup():
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL.value)
        # The worker may have died between fork and prctl: then nobody would kill us later.
        if os.getppid() != worker_pid:
            os._exit(1)

    return setup


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_for_exit(pid: int, pidfd: int | None, timeout: float) -> bool:
    """True once the process has exited. Does not reap it (see ``supervise``)."""
    if pidfd is not None:
        poller = select.poll()  # not select.select: it cannot watch descriptors above 1023
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    end = time.monotonic() + timeout
    delay = 0.001
    while True:
        if _has_exited(pid):
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def _has_exited(pid: int) -> bool:
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_until_gone(pgid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while True:
        if not _group_has_live_members(pgid):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(_KILL_POLL_SECONDS)


def _group_has_live_members(pgid: int) -> bool:
    """Whether a process other than a zombie is still in the group.

    ``killpg(pgid, 0)`` alone cannot tell: it also succeeds for zombies, such as our own
    unreaped child or orphans whose new parent does not reap them.
    """
    if not _group_exists(pgid):
        return False
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain anything.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False
