"""Task environments in the worker: the attempt's setup phase, and their clean-up on every node.

A task with ``environment_key`` (or ``libraries``) runs on the interpreter of an environment
built from its spec (jobs/spec/environments.py), under ``LAKEFLOW_TASK_HOME/environments/<key>``.
Each is built once per host: a ``TaskEnvironment`` row claimed by compare-and-swap says who
builds it; other workers (on any cluster node of this host) wait for READY, and take the build
over if its builder stops sending heartbeats. A failed build fails the waiting tasks with the
installer's message; the next task to arrive after that tries the build again.

The setup's output goes to the attempt's ``setup.log`` beside its ``output.log``, and its
duration to ``TaskRun.setup_duration_ms`` (``setup_duration`` in runs/get).
"""

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Min
from django.utils import timezone

from jobs.spec.environments import environment_key_of, environment_spec
from jobs.spec.task_types import task_type_of
from runs.engine.states import RunLifeCycleState as L
from runs.executors.environments import (
    BuildFailed, BuildStopped, build_environment, environment_python, is_built, remove_environment, resolve_lines,
)
from runs.executors.errors import LaunchError
from runs.executors.files import TaskFiles, append_for_server, open_task_file
from runs.models import TaskEnvironment, TaskRun

log = logging.getLogger(__name__)
HOST = socket.gethostname()
SETUP_LOG = "setup.log"
USED_AGAIN_AFTER = timedelta(hours=1)  # last_used_at is written at most this often per environment
CLEAN_EVERY_SECONDS = 60  # how often each node looks for unused environments of its host
LEFTOVERS_AFTER = timedelta(hours=2)  # longer than any build (build_environment's timeout)
WAIT_SECONDS = 0.5  # between looks at a build another worker is doing


class EnvironmentFailed(LaunchError):
    """The environment could not be built: the attempt fails with the installer's message."""

    def __init__(self, message, setup_duration_ms):
        super().__init__("LIBRARY_INSTALLATION_ERROR", message)
        self.setup_duration_ms = setup_duration_ms


@dataclass(frozen=True)
class Ready:
    python: str
    variables: dict  # VIRTUAL_ENV, and PATH with the environment's bin first (shell tasks, subprocesses)
    setup_duration_ms: int


def environments_dir():
    return settings.LAKEFLOW_TASK_HOME / "environments"


def setup_log_path(log_path):
    """The setup log beside an attempt's output log."""
    return str(Path(log_path).with_name(SETUP_LOG)) if log_path else ""


def set_up_environment(job_settings, task, attempt_dir, *, keep_going=lambda: True, files=None):
    """The environment the task runs in (built now if needed), or None for the default one.

    ``keep_going()`` is called every few seconds while this waits (it beats the attempt's
    heartbeat; False: the attempt was canceled). ``files`` is the attempt's TaskFiles (the
    worker's, also given to prepare_attempt; None: ``task_files()``). Raises LaunchError for a
    path outside the task roots or not a regular file, and EnvironmentFailed when the build fails."""
    spec = environment_spec(job_settings, task, task_type_of(task) or "")
    if spec is None or not spec.lines:  # nothing to install (a serverless `client: "1"` alone): the default
        return None
    started = time.monotonic()
    attempt_dir = Path(attempt_dir)
    attempt_dir.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
    attempt_dir.mkdir(mode=0o700, exist_ok=True)
    with open(append_for_server(str(attempt_dir / SETUP_LOG)), "ab", buffering=0) as setup_log:
        say = lambda text: setup_log.write(f"{text}\n".encode())  # noqa: E731
        say(f"Environment from {spec.source}: {len(spec.lines)} requirement line(s)")
        for name, value in spec.recorded.items():
            say(f"{name}: {value} (recorded; built on {settings.LAKEFLOW_TASK_PYTHON})")
        for skipped in spec.skipped:
            say(f"skipped {skipped}")
        python = settings.LAKEFLOW_TASK_PYTHON
        try:
            resolved = resolve_lines(spec.lines, files or task_files())
        except LaunchError as exc:  # a path outside the task roots, a FIFO
            say(exc.message)
            raise
        key = environment_key_of(resolved.lines, python, resolved.files)
        directory = environments_dir() / key
        try:
            built_now = ensure_built(key, directory, resolved.lines, setup_log, keep_going)
        except BuildFailed as exc:
            say(f"The environment could not be built: {exc.message}")
            raise EnvironmentFailed(exc.message, elapsed_ms(started)) from None
        say(f"Environment {key} {'built' if built_now else 'ready'} in {elapsed_ms(started)} ms")
    bin_dir = str(directory / "bin")
    return Ready(environment_python(directory),
                 {"VIRTUAL_ENV": str(directory), "PATH": f"{bin_dir}:{os.environ.get('PATH', os.defpath)}"},
                 elapsed_ms(started))


def task_files():
    """The paths a task may use, from the settings: built once per attempt by the worker."""
    return TaskFiles(settings.LAKEFLOW_WORKSPACE_ROOT, tuple(settings.LAKEFLOW_TASK_FILE_ROOTS),
                     (settings.LAKEFLOW_HOME, settings.LAKEFLOW_TASK_HOME), settings.LAKEFLOW_FS_ROOTS)


def elapsed_ms(started):
    return int((time.monotonic() - started) * 1000)


def ensure_built(key, directory, lines, setup_log, keep_going):
    """Wait for, take over or do the build of ``key`` on this host; True if this call built it.

    A FAILED row found on arrival is built again (the cause may be gone: a registry outage, a
    wheel since uploaded); one that a build this call waited for ended in is shared."""
    waited = False
    while True:
        row = TaskEnvironment.objects.filter(key=key, host=HOST).first()
        now = timezone.now()
        me = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if row is None:
            try:
                with transaction.atomic():
                    row = TaskEnvironment.objects.create(key=key, host=HOST, state=TaskEnvironment.BUILDING,
                                                         builder=me, heartbeat_at=now, lines=list(lines))
            except IntegrityError:  # another worker created it first
                continue
            return build_claimed(row, directory, lines, setup_log, keep_going)
        if row.state == TaskEnvironment.READY and is_built(directory):
            if row.last_used_at is None or row.last_used_at < now - used_again_after():
                # Only while READY: a clean-up that claimed it first (REMOVING) wins, and this
                # task waits for it, then builds it anew.
                if not TaskEnvironment.objects.filter(id=row.id, state=TaskEnvironment.READY).update(last_used_at=now):
                    continue
                if not is_built(directory):
                    continue
            return False
        if row.state == TaskEnvironment.FAILED and waited:
            raise BuildFailed(row.error)
        stale = now - timedelta(seconds=settings.LAKEFLOW_LOST_AFTER_SECONDS)
        if row.state in (TaskEnvironment.READY, TaskEnvironment.FAILED) or row.heartbeat_at < stale:
            # READY without its directory (deleted by hand), FAILED before we came, or a builder
            # (or remover) that died: claim it, exactly one of the workers that try wins.
            if TaskEnvironment.objects.filter(id=row.id, state=row.state, builder=row.builder,
                                              heartbeat_at=row.heartbeat_at).update(
                    state=TaskEnvironment.BUILDING, builder=me, heartbeat_at=now, error=""):
                row.state, row.builder, row.heartbeat_at = TaskEnvironment.BUILDING, me, now
                return build_claimed(row, directory, lines, setup_log, keep_going)
            continue
        if not waited:
            setup_log.write(f"Waiting for {row.builder} to build environment {key}\n".encode())
            waited, last_check = True, time.monotonic()
        if time.monotonic() - last_check >= settings.LAKEFLOW_HEARTBEAT_SECONDS:
            last_check = time.monotonic()  # keep_going writes the attempt's heartbeat
            if not keep_going():
                raise BuildStopped("The task was canceled while its environment was being built")
        wait_for_builder()


def wait_for_builder():
    time.sleep(WAIT_SECONDS)  # a build takes seconds to minutes: a look twice a second is enough


def build_claimed(row, directory, lines, setup_log, keep_going):
    """Build the claimed row's environment; READY or FAILED (with the message) after."""
    started = time.monotonic()
    last_beat = [time.monotonic()]

    def beat_and_go_on():
        if time.monotonic() - last_beat[0] >= settings.LAKEFLOW_HEARTBEAT_SECONDS:
            last_beat[0] = time.monotonic()
            TaskEnvironment.objects.filter(id=row.id, builder=row.builder).update(heartbeat_at=timezone.now())
            return keep_going()
        return True

    user = settings.LAKEFLOW_TASK_USER
    switch_to = user if getattr(user, "switch", False) else None
    cache = None  # built as the task user: no cache that tasks could tamper with
    if switch_to is None:  # tasks run as the server's user: nothing to guard a cache from
        cache = environments_dir() / ".uv-cache"
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        build_environment(directory, lines, python=settings.LAKEFLOW_TASK_PYTHON, uv=settings.LAKEFLOW_UV,
                          log=setup_log, cache_dir=cache, user=switch_to, keep_going=beat_and_go_on,
                          poll_seconds=min(1.0, settings.LAKEFLOW_HEARTBEAT_SECONDS))
    except BuildStopped:  # canceled: a waiting worker builds it instead, as after a crash
        TaskEnvironment.objects.filter(id=row.id, builder=row.builder).delete()
        raise
    except BuildFailed as exc:
        TaskEnvironment.objects.filter(id=row.id, builder=row.builder).update(
            state=TaskEnvironment.FAILED, error=exc.message, heartbeat_at=timezone.now())
        raise
    except BaseException:  # a bug or the worker stopping: not the spec's fault either
        TaskEnvironment.objects.filter(id=row.id, builder=row.builder).delete()
        raise
    now = timezone.now()
    TaskEnvironment.objects.filter(id=row.id, builder=row.builder).update(
        state=TaskEnvironment.READY, build_ms=elapsed_ms(started), built_at=now, last_used_at=now, heartbeat_at=now)
    return True


def used_again_after():
    """How long a use of an environment is not written down again: at most half its keep time,
    so an environment a task started on is never older than the clean-up's cutoff."""
    return min(USED_AGAIN_AFTER, timedelta(days=settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS) / 2)


def remove_unused_environments(now):
    """Delete this host's environments no task used for LAKEFLOW_ENVIRONMENT_KEEP_DAYS, and the
    failed records and leftovers of interrupted builds as old.

    A task running on this host counts as a use while it runs: no environment used since
    ``used_again_after()`` before the oldest such attempt (with a setup phase) started goes."""
    cutoff = now - timedelta(days=settings.LAKEFLOW_ENVIRONMENT_KEEP_DAYS)
    oldest_running = TaskRun.objects.filter(
        worker_host=HOST, life_cycle_state__in=[L.RUNNING, L.TERMINATING], setup_duration_ms__isnull=False,
    ).aggregate(started=Min("started_at"))["started"]
    unused_before = cutoff if oldest_running is None else min(cutoff, oldest_running - used_again_after())
    removed = 0
    me = f"{HOST}:{os.getpid()}:gc"
    for row in TaskEnvironment.objects.filter(host=HOST, state=TaskEnvironment.READY, last_used_at__lt=unused_before):
        # The claim keeps a task from starting on it meanwhile (it waits, then builds it anew).
        if TaskEnvironment.objects.filter(id=row.id, state=TaskEnvironment.READY, last_used_at=row.last_used_at).update(
                state=TaskEnvironment.REMOVING, builder=me, heartbeat_at=now):
            remove_environment(environments_dir() / row.key)
            TaskEnvironment.objects.filter(id=row.id, state=TaskEnvironment.REMOVING, builder=me).delete()
            removed += 1
    removed += TaskEnvironment.objects.filter(host=HOST, state=TaskEnvironment.FAILED, heartbeat_at__lt=cutoff).delete()[0]
    removed += remove_leftovers(min(cutoff, now - LEFTOVERS_AFTER))
    return removed


def clean_environments(should_stop, every=CLEAN_EVERY_SECONDS):
    """Every cluster node's own clean-up of its host's environments (all nodes, not only the
    clock's leader: environments live on each machine's disk), in a thread of its own so that
    deleting a large environment never holds up the clock. Runs until ``should_stop()``."""
    while not should_stop():
        try:
            remove_unused_environments(timezone.now())
        except Exception:  # a database restart must not end the clean-up
            log.exception("removing unused environments failed")
        finally:
            close_old_connections()
        time.sleep(every)  # periodic work, not a synchronisation: nothing waits for a pass


def start_cleaning_environments(should_stop):
    thread = threading.Thread(target=clean_environments, args=(should_stop,), name="environment-clean-up", daemon=True)
    thread.start()
    return thread


def remove_leftovers(cutoff):
    """Temporary directories of builds or removals that a crash interrupted."""
    found = 0
    try:
        entries = list(os.scandir(environments_dir()))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith((".building", ".removing")) and entry.stat(follow_symlinks=False).st_mtime < cutoff.timestamp():
            shutil.rmtree(entry.path, ignore_errors=True)
            found += 1
    return found


SETUP_LOG_SHOWN_BYTES = 64 * 1024


def setup_of(attempt):
    """The attempt's setup phase for its panel: {"log", "truncated", "duration_ms"}, or None
    when it had none (it ran on the default interpreter)."""
    path = setup_log_path(attempt.log_path)
    if not path:
        return None
    try:
        # Never through a symlink: the attempt's directory belongs to its task's user.
        with open_task_file(path, max_bytes=2**62) as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - SETUP_LOG_SHOWN_BYTES))
            data = f.read()
    except OSError:
        return None
    return {"log": data.decode("utf-8", errors="replace"), "truncated": size > SETUP_LOG_SHOWN_BYTES,
            "duration_ms": attempt.setup_duration_ms}
