"""A warm Python process that forks task attempts, instead of starting an interpreter per attempt.

Starting ``python`` costs 30-50 ms here and loading the runner a few more; a fork of a process
that has already done both costs about 2 ms. Each worker keeps one fork server (its child, which
the kernel kills when the worker dies) and asks it over a socket pair for one attempt at a time:

- the worker sends ``{"argv", "cwd", "env"}`` with the open log file (SCM_RIGHTS);
- the server forks; the attempt process leads its own process group (which holds the whole
  tree it starts), asks for SIGKILL when the server dies, takes the log as stdout and
  stderr, changes directory and environment, and runs ``runner.main`` in a clean stack;
- the server answers ``{"pid"}`` once the attempt has its own process group, waits for it, kills
  whatever it left in its process group, reaps it and answers ``{"exit", "usage"}`` (exit:
  negative for the signal that killed it, as ``subprocess`` reports it; usage: what the group
  consumed, below).

The server is its attempts' *subreaper* (``PR_SET_CHILD_SUBREAPER``): the processes an attempt
orphans become the server's children instead of init's, so it reaps every process that stayed
in the attempt's process group with ``wait4`` and adds up their rusage (CPU, block I/O, largest
RSS). With the attempt's own rusage, which holds every descendant reaped inside the tree, that
is the whole group's consumption, exactly (runs/executors/usage.py).

So the worker -> server -> attempt chain dies together, as with a directly started process. A
forked attempt differs from a fresh interpreter only in what the interpreter fixed at start-up:
``PYTHON*`` and locale variables (the worker starts a server per set of them) and the hash seed,
shared by the attempts of one server.

Standard library only, like ``runner.py``: the server runs this file by its location, never the
``runs`` package or Django.
"""

import atexit
import gc
import json
import os
import signal
import socket
import sys
import time

MAX_MESSAGE = 1 << 20
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
GROUP_REAP_SECONDS = 2.0
"""How long the server waits for the killed rest of an attempt's group (a process in the kernel's
uninterruptible sleep dies late); what is left is reaped later, unmeasured."""

BOOTSTRAP = (
    "import sys\n"
    "from importlib.machinery import SourceFileLoader\n"
    "if sys.path[:1] == ['']: del sys.path[0]\n"
    "server = type(sys)('_lakeflow_forkserver')\n"
    "server.__file__ = sys.argv[1]\n"
    "SourceFileLoader(server.__name__, server.__file__).exec_module(server)\n"
    "sys.exit(server.main(sys.argv[2:]))\n"
)

STARTUP_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")
"""Besides ``PYTHON*``: read once by the interpreter at start-up, so a fork cannot change them."""


def startup_environment(env):
    """The part of ``env`` a forked attempt inherits from the server rather than from ``env``."""
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith("PYTHON") or k in STARTUP_VARIABLES))


class ForkServerGone(Exception):
    """The server died or its socket broke: start the attempt another way."""


class ForkServer:
    """The worker's side: start the server, spawn attempts through it, read their exit codes."""

    def __init__(self, python, env, runner_path, user=None):
        import subprocess

        self.python, self.user = python, user
        self.startup = startup_environment(env)
        # The server runs as the task user already: its attempts are its forks.
        as_user = {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [python, "-c", BOOTSTRAP, os.path.abspath(__file__), runner_path, str(theirs.fileno()),
                 str(os.getpid())],
                # Only what an interpreter reads at start-up: the server outlives the attempt whose
                # environment (its job's variables, its references' values) started it, and later
                # attempts could read its /proc/<pid>/environ. Each attempt gets its own from spawn.
                env={"PATH": env.get("PATH", os.defpath), **dict(self.startup)},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()], start_new_session=True, **as_user,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.owner_pid = os.getpid()

    def serves(self, python, env, user=None):
        return (self.owner_pid == os.getpid() and self.process.poll() is None
                and python == self.python and startup_environment(env) == self.startup and user == self.user)

    def spawn(self, argv, cwd, env, log_fd):
        """Fork one attempt; its pid, which is also its process group id."""
        request = json.dumps({"argv": argv, "cwd": cwd, "env": env}).encode()
        try:
            socket.send_fds(self.sock, [request], [log_fd])
            return self._receive()["pid"]
        except Exception as exc:  # whatever it was, the conversation is out of step: start over
            self.close()
            raise ForkServerGone(f"{type(exc).__name__}: {exc}") from exc

    def fileno(self):
        """Readable once the running attempt has ended (or the server died)."""
        return self.sock.fileno()

    def ended(self):
        """Wait for the running attempt's end: its exit code and its group's usage report
        (``usage.Figures.of_report``); (None, None) if the server died meanwhile (or answered
        out of step, and is stopped for it)."""
        try:
            message = self._receive()
            return message["exit"], message.get("usage")
        except Exception:
            self.close()
            return None, None

    def close(self):
        self.sock.close()
        if self.owner_pid == os.getpid():
            self.process.kill()
            self.process.wait()

    def _receive(self):
        data = self.sock.recv(MAX_MESSAGE)
        if not data:
            raise ForkServerGone("the fork server exited")
        return json.loads(data)


MAX_WARM_SERVERS = 4
"""Fork servers a worker keeps warm at once: one per interpreter in use (the default one and
each task environment's), so tasks of several environments do not restart each other's."""

_shared = None  # the most recently used
_warm = []  # the others still kept, least recently used first


def shared_fork_server(python, env, runner_path, user=None):
    """This process's fork server for that interpreter, start-up environment and task user
    (started now if it has none, or none that can serve them)."""
    global _shared, _warm
    kept = []
    for server in [*_warm, *([_shared] if _shared is not None else [])]:
        if server.owner_pid != os.getpid() or server.process.poll() is not None:
            server.close()  # one inherited through a fork is only let go: it is our parent's
        else:
            kept.append(server)
    found = next((server for server in kept if server.serves(python, env, user)), None)
    if found is None:
        found = ForkServer(python, env, runner_path, user)
    else:
        kept.remove(found)
    while len(kept) >= MAX_WARM_SERVERS:
        kept.pop(0).close()
    _shared, _warm = found, kept
    return _shared


# The server's side, run in its own process by BOOTSTRAP.

def main(argv):
    runner_path, fd, worker_pid = argv
    _die_with(int(worker_pid))
    prctl = libc_prctl()
    if prctl is not None:  # the attempts' orphans become ours to reap and measure (not inherited by a fork)
        prctl(_PR_SET_CHILD_SUBREAPER, 1)
    runner = _load_module("_lakeflow_runner", runner_path)
    runner._load_dbutils()  # a no-op attempt then only installs it
    import traceback  # noqa: F401  (the runner imports it on every failure)

    gc.freeze()  # the attempts' collections then leave these objects' pages shared
    request = serve(socket.socket(fileno=int(fd)))
    # Only a forked attempt gets here, with the server's loop unwound: the task runs on a clean
    # stack. It exits as multiprocessing's forked children do: after its threads, atexit handlers
    # and streams, but without tearing down every module, which would touch (and so copy) every
    # page it shares with the server (~15 ms here, several times the rest of a no-op attempt).
    sys.argv[:] = ["-c", *request["argv"]]  # what a runner started by its own interpreter sees
    code = runner.main(request["argv"])
    if "threading" in sys.modules:
        sys.modules["threading"]._shutdown()
    atexit._run_exitfuncs()
    _flush_open_files()
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


def _flush_open_files():
    """Write what files the task left open still buffer, as tearing the interpreter down would
    (sys.stdout and sys.stderr among them). Objects from before the fork are frozen and skipped."""
    import io

    files = [obj for obj in gc.get_objects() if isinstance(obj, io.IOBase)]
    files.sort(key=lambda f: not isinstance(f, io.TextIOBase))  # text first: it writes into its buffer
    for file in [*files, sys.stdout, sys.stderr]:
        try:
            if not file.closed:
                file.flush()
        except Exception:  # a detached or broken file: nothing more to save
            pass


def serve(sock):
    """Answer spawn requests until the worker goes away; returns only inside a forked attempt."""
    server_pid = os.getpid()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
        except ConnectionError:
            data, fds = b"", []
        if not data:
            sys.exit(0)  # the worker closed its end or died
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _become_attempt(request, fds[0], server_pid)
            return request
        for fd in fds:
            os.close(fd)
        # Both sides set the attempt's process group (the job-control idiom): it exists before
        # the worker hears the pid, whichever of the two runs first. No new session needed: the
        # server has none (no controlling terminal) for its attempts to inherit.
        _join_own_group(pid)
        sock.send(json.dumps({"pid": pid}).encode())
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        try:  # the leader is an unreaped zombie, so its pid still names the group
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _, status, usage = os.wait4(pid, 0)
        report = _add_usage({"cpu_seconds": 0.0, "read_bytes": 0, "written_bytes": 0, "max_rss_bytes": 0}, usage)
        _reap_group(pid, report)
        _reap_strays()
        sock.send(json.dumps({"exit": os.waitstatus_to_exitcode(status), "usage": report}).encode())


def _add_usage(report, usage):
    """Add one reaped process's rusage (it and the descendants it reaped) to the report."""
    report["cpu_seconds"] += usage.ru_utime + usage.ru_stime
    report["read_bytes"] += usage.ru_inblock * 512  # Linux counts block I/O in 512-byte units
    report["written_bytes"] += usage.ru_oublock * 512
    report["max_rss_bytes"] = max(report["max_rss_bytes"], usage.ru_maxrss * 1024)
    return report


def _reap_group(pgid, report):
    """Reap what is left of the attempt's process group (killed; its orphans are our children),
    adding each one's rusage. Without leftovers this is one system call."""
    deadline = None
    while True:
        try:
            pid, _, usage = os.wait4(-pgid, os.WNOHANG)
        except ChildProcessError:
            return  # none of our children is left in the group
        if pid:
            _add_usage(report, usage)
            continue
        deadline = deadline or time.monotonic() + GROUP_REAP_SECONDS
        if time.monotonic() >= deadline:
            return
        time.sleep(0.001)


def _reap_strays():
    """Reap the ended processes that left an attempt's group (a daemon's setsid) and then became
    our orphans: not counted. One that ends while the server waits for work stays a zombie until
    the next attempt ends (a SIGCHLD handler would race the wait4 calls that measure attempts)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def _become_attempt(request, log_fd, server_pid):
    _join_own_group(0)
    _die_with(server_pid)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    for fd in (devnull, log_fd):
        os.close(fd)
    try:
        os.chdir(request["cwd"])
    except OSError as exc:
        os.write(2, f"Could not start the task process: {exc}\n".encode())
        os._exit(1)
    os.environ.clear()
    os.environ.update(request["env"])


def _join_own_group(pid):
    try:
        os.setpgid(pid, 0)
    except OSError:  # the child has already done it, or has already exited
        pass


def _die_with(parent_pid):
    """SIGKILL this process when its parent dies; exit now if it already has."""
    prctl = libc_prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL.value)
    if os.getppid() != parent_pid:
        os._exit(1)


def libc_prctl():
    """libc's prctl, or None (not Linux). Loaded once: a process about to fork loads it before,
    so the child never has to load a library."""
    global _prctl
    if _prctl is _UNSET:
        try:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = None
    return _prctl


_UNSET = object()
_prctl = _UNSET


def _load_module(name, path):
    from importlib.machinery import SourceFileLoader

    module = type(sys)(name)
    module.__file__ = path
    sys.modules[name] = module
    SourceFileLoader(name, path).exec_module(module)
    return module
