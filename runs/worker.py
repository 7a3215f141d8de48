"""The django-q2 task that runs one task attempt in its own supervised OS process."""

import dataclasses
import errno
import logging
import socket
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from jobs.spec.documents import readable
from jobs.spec.embedded import EmbeddedReferenceError
from jobs.spec.env_files import MAX_FILE_BYTES as MAX_ENV_FILE_BYTES, EnvFileRefused, merged_variables
from jobs.spec.command_line import command_line_problems, environment_problems
from jobs.spec.dbt import environment_task as dbt_environment_task
from jobs.spec.task_types import not_supported, task_type_of, unsupported_kind
from runs.attempt_credentials import (databricks_environment, openlineage_environment, secrets_environment,
                                      system_tables_access)
from runs.dispatch import end_broken_run, finish_attempt
from runs.environments import set_up_environment, task_files
from runs.git_checkouts import checkout_for_attempt
from runs.engine import endings
from runs.engine.states import RunLifeCycleState as L, RunResultState as R, TerminationCode
from runs.executors.files import append_for_server, read_beneath
from runs.executors.dbt import server_duckdb_version
from runs.executors.launch import LaunchError, prepare_attempt
from runs.executors.supervisor import read_attempt_result, supervise
from runs.loading import CONTROL_FLOW_TYPES, attempt_task_settings, job_version, share_run
from runs.models import TaskRun
from runs.resolution import fact_keys, resolve_task, resolved_values, upstream_facts
from runs.sql_tables import tables_written
from runs.task_logs import without_secret_values
from runs.transitions import Handoff, claim
from runs.usage import usage_fields
from runs.triggers import record_table_writes
from warehouses.catalog import WarehouseDeleted, urls_for_task

log = logging.getLogger(__name__)
HOST = socket.gethostname()

RECONNECT_SECONDS = 30
"""How long a worker keeps trying to record an attempt's end while the database is unreachable;
after that the attempt stays RUNNING and the reaper fails it as lost (then retries it)."""

FIRST_HEARTBEAT_SECONDS = 0.5
"""When a running attempt first writes its pid: a worker that dies sooner leaves the reaper
without it, and the task's process group then dies only with its direct child (PDEATHSIG)."""


def execute_attempt(attempt_id):
    """Entry point for the broker. A redelivered or canceled attempt is a no-op.

    The attempt's finish may hand this worker the next attempt of its run (``Handoff``): it then
    runs that one too, and so on, within ``LAKEFLOW_HANDOFF_SECONDS``.
    """
    found = TaskRun.objects.filter(id=attempt_id).values_list("task_type", "life_cycle_state").first()
    if found and found[0] in CONTROL_FLOW_TYPES:
        from runs.control_flow import execute_control_flow

        return execute_control_flow(attempt_id)
    if found is None or found[1] != L.PENDING:  # most often: a Handoff took it already
        return "not claimed"
    attempt = claimable(attempt_id)
    if attempt is None or not claim_loaded(attempt):
        return "not claimed"
    handoff = Handoff(HOST, deadline=time.monotonic() + settings.LAKEFLOW_HANDOFF_SECONDS)
    outcomes = []
    while attempt is not None:
        outcomes.append(run_guarded(attempt, handoff))
        attempt = handed_off(handoff)
    return outcomes[0] if len(outcomes) == 1 else f"{outcomes[0]}, then {len(outcomes) - 1} handed off"


def handed_off(handoff):
    """The attempt the last finish claimed for this worker, if that claim was committed: a finish
    that failed (rolled back, or lost its connection at commit) may or may not have been, so
    then it is read again."""
    attempt = handoff.pop_committed()
    if attempt is not None:
        return attempt
    claimed_at, taken = handoff.claimed_at, handoff.pop()
    attempt = reconnecting(lambda: claimable(taken)) if taken else None
    if attempt is None or (attempt.worker_host, attempt.started_at) != (HOST, claimed_at):
        return None
    # TERMINATING: canceled since; it starts, and its first check stops it as CANCELED.
    return attempt if attempt.life_cycle_state in (L.RUNNING, L.TERMINATING) else None


def claimable(attempt_id):
    attempt = TaskRun.objects.select_related("run__job").filter(id=attempt_id).first()
    if attempt is not None:
        attempt.run.job_version = job_version(attempt.run.job_version_id)
    return attempt


def claim_loaded(attempt):
    """Claim a loaded attempt for this worker; False if another worker (or a cancel) was first."""
    with transaction.atomic():
        share_run(attempt.run_id)
        return claim(attempt.run, attempt, timezone.now(), HOST)


def run_guarded(attempt, handoff):
    try:
        return run_claimed_attempt(attempt, handoff)
    except DATABASE_ERRORS:
        raise  # the database stayed out of reach past RECONNECT_SECONDS: the reaper takes over
    except Exception as exc:  # a bug here must fail the attempt visibly, never leave it RUNNING
        log.exception("attempt %s failed inside the worker", attempt.id)
        message = f"Internal error in the worker: {type(exc).__name__}: {exc}"
        try:
            finish(attempt, endings.internal_error(message))
        except DATABASE_ERRORS:
            raise
        except Exception as again:  # the run cannot advance at all: it alone ends, saying why
            log.exception("run %s cannot advance; ending it", attempt.run_id)
            end_broken_run(attempt.run_id, f"{message}; then the run could not go on: {type(again).__name__}: {again}")
        return "internal error"


DATABASE_ERRORS = (OperationalError, InterfaceError)


def reconnecting(call, seconds=RECONNECT_SECONDS):
    """call(), and again on a fresh connection while the database cannot be reached (dropped
    connections, a restart): a task that ran must not lose its result to a blip."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except DATABASE_ERRORS:
            if time.monotonic() >= deadline:
                raise
            log.warning("database unreachable; retrying on a new connection", exc_info=True)
            connection.close()
            time.sleep(0.5)


def tolerant(call, meanwhile):
    """call() for the supervisor's checks, or ``meanwhile`` while the database cannot be reached:
    the task runs on, and the next check reconnects."""
    def checked():
        try:
            return call()
        except DATABASE_ERRORS:
            log.warning("database unreachable during a check; trying again at the next one", exc_info=True)
            connection.close()
            return meanwhile
    return checked


def attempt_dir(attempt):
    return settings.LAKEFLOW_TASK_HOME / "attempts" / str(attempt.run_id) / str(attempt.id)


def run_claimed_attempt(attempt, handoff=None):
    run = attempt.run
    task = attempt_task_settings(run.job_version, attempt)
    if task is None:
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION,
                    f"Task {attempt.task_key} is not in the job's settings any more", handoff=handoff)
    cannot_run = unsupported_kind(task)
    if cannot_run:  # saved, as Databricks accepts it; cannot run here
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION, not_supported(cannot_run), handoff=handoff)
    facts = upstream_facts(run, fact_keys(run, attempt, task))
    try:
        task, widgets, embedded = resolve_task(task, run, attempt, facts)
    except EmbeddedReferenceError as exc:
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION, str(exc), handoff=handoff)
    directory = attempt_dir(attempt)
    kind = task_type_of(task)
    if kind == "dbt_task":  # dbt-core and its adapters, in an environment of their own
        task = dbt_environment_task(run.job_version.settings, task, duckdb_version=server_duckdb_version())
    try:
        declared = declared_environment(run.job_version.settings, task)
    except EnvFileRefused as exc:
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION, str(exc), handoff=handoff)
    # The job's own variables win: a job may send its OpenLineage events elsewhere.
    environment = {**openlineage_environment(attempt), **databricks_environment(attempt),
                   **declared, **embedded,
                   **secrets_environment(attempt)}  # after the job's: dbutils.secrets' own credential
    too_long = command_line_problems(kind, task.get(kind) or {}) + environment_problems(environment)
    if too_long:  # references made a parameter longer than the operating system takes
        where, problem = too_long[0]
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION,
                    f"{kind}.{where} {problem}" if where else f"{kind}: {problem}", handoff=handoff,
                    resolved_values=resolved_values(task, embedded))
    log_path = directory / "output.log"
    # Written with the process id at the first heartbeat, or with the finish by the many attempts
    # that end sooner (one write, not two: on SQLite every write waits for the one write lock).
    started_fields = dict(resolved_values=resolved_values(task, embedded), log_path=str(log_path))
    python = settings.LAKEFLOW_TASK_PYTHON
    files = task_files()  # the paths the task may use: for its setup and its launch alike
    keep_going = tolerant(lambda: beat(attempt.id, log_path=str(log_path)) or still_running(attempt.id),
                          meanwhile=True)
    checkout_ms = None
    try:  # the setup phase: the run's git commit checked out, and the task's environment, built
        # now if no worker has built them yet
        checkout, checkout_ms = checkout_for_attempt(run, run.job_version.settings, task, directory,
                                                     keep_going=keep_going)
        ready = set_up_environment(run.job_version.settings, task, directory, files=files, keep_going=keep_going)
    except LaunchError as exc:  # git's error, a library path outside the task roots, or the installer's error
        started_fields["setup_duration_ms"] = _sum_ms(checkout_ms, getattr(exc, "setup_duration_ms", None))
        if TaskRun.objects.filter(id=attempt.id, life_cycle_state=L.TERMINATING).exists():  # canceled meanwhile
            finish(attempt, endings.attempt_ended(R.CANCELED, "Canceled by user"), handoff=handoff,
                   **started_fields)
            return "canceled"
        return fail(attempt, exc.code, exc.message, handoff=handoff, **started_fields)
    if ready is not None:
        python = ready.python
        environment.update(ready.variables)
    if ready is not None or checkout is not None:
        started_fields["setup_duration_ms"] = _sum_ms(checkout_ms, ready and ready.setup_duration_ms)
    try:  # created warehouses come from the database: a stopped one starts, a deleted one fails the task
        warehouses = urls_for_task(task, timezone.now())
    except WarehouseDeleted as exc:
        return fail(attempt, TerminationCode.RESOURCE_NOT_FOUND, str(exc), handoff=handoff, **started_fields)
    try:
        spec = prepare_attempt(
            task,
            attempt_dir=directory,
            files=files,
            git_checkout=checkout,
            widgets=widgets,
            upstream_values={key: fact["values"] for key, fact in facts.items()},
            env=environment,
            warehouses=warehouses,
            python=python,
            user=settings.LAKEFLOW_TASK_USER,
            server_variables=settings.LAKEFLOW_TASK_ENV,
            system_tables=system_tables_access(attempt) if kind == "sql_task" else None,
        )
    except LaunchError as exc:
        directory.mkdir(parents=True, exist_ok=True)
        with open(append_for_server(str(log_path)), "a", encoding="utf-8") as log:  # never via a planted link
            log.write(exc.message + "\n")
        return fail(attempt, exc.code, exc.message, handoff=handoff, **started_fields)

    timeout = task.get("timeout_seconds") or None
    first_beat = {}  # the pid and what the attempt started with, for the first heartbeat to write

    def on_heartbeat():
        beat(attempt.id, **first_beat)
        first_beat.clear()

    try:
        outcome = supervise(
            spec,
            log_path=log_path,
            timeout_seconds=timeout,
            should_cancel=tolerant(lambda: still_running(attempt.id) is False, meanwhile=False),
            heartbeat_every=settings.LAKEFLOW_HEARTBEAT_SECONDS,
            first_heartbeat_after=min(FIRST_HEARTBEAT_SECONDS, settings.LAKEFLOW_HEARTBEAT_SECONDS),
            use_fork_server=settings.LAKEFLOW_FORK_SERVER,
            on_heartbeat=tolerant(on_heartbeat, meanwhile=None),
            on_start=lambda pid: first_beat.update(process_id=pid, **started_fields),
        )
    except LaunchError as exc:  # the interpreter or command could not be started at all
        return fail(attempt, exc.code, exc.message, handoff=handoff, **started_fields)
    result = without_secret_values(readable_result(read_attempt_result(spec, outcome)), attempt.id)
    if result.sql_ran:
        written = tables_written(result.sql_ran["statements"], warehouse_id=result.sql_ran["warehouse_id"],
                                 dialect=result.sql_ran["dialect"])
        if written:
            record_table_writes(attempt, written, timezone.now())
    if result.dbt_ran and result.dbt_ran["writes"]:
        record_table_writes(attempt, result.dbt_ran["writes"], timezone.now())
    fields = dict(
        started_fields,
        handoff=handoff,
        process_id=outcome.pid,
        exit_code=outcome.exit_code,
        error=result.error or "",
        error_trace=result.error_trace or "",
        notebook_result=None if result.notebook_result is None else {
            "result": result.notebook_result, "truncated": result.notebook_result_truncated},
        task_values=result.task_values or {},
        sql_output=result.sql_output,
        executed_notebook=executed_notebook(spec),
        data_access=data_access(result),
        **usage_fields(outcome),  # built last: cleanup_duration_ms runs from the process's end to here
    )
    if outcome.canceled:
        finish(attempt, endings.attempt_ended(R.CANCELED, "Canceled by user"), **fields)
        return "canceled"
    if outcome.timed_out:
        finish(attempt, endings.attempt_ended(R.TIMEDOUT, f"Task timed out after {timeout} seconds"), **fields)
        return "timed out"
    if outcome.exit_code == 0:
        finish(attempt, endings.attempt_ended(R.SUCCESS), **fields)
        return "success"
    message = result.error or f"Task exited with code {outcome.exit_code}"
    finish(attempt, endings.attempt_ended(R.FAILED, message, code=result.error_code), **fields)
    return "failed"


def _sum_ms(*parts):
    """The setup phase's duration from its parts (None: it had none)."""
    found = [part for part in parts if part is not None]
    return sum(found) if found else None


def declared_environment(job_settings, task):
    """The variables of the job's environment_variables entry the task names, if any: its .env
    files read now (as Databricks reads them, at task start), its inline variables over them.
    Raises EnvFileRefused for a file that is missing, outside its root or malformed."""
    key = task.get("environment_variables_key")
    for entry in job_settings.get("environment_variables") or [] if key else []:
        if entry.get("environment_variables_key") == key:
            spec = entry.get("spec") or {}
            files = [(path, read_env_file(path)) for path in spec.get("files") or []]
            return merged_variables(files, dict(spec.get("variables") or {}))
    return {}


def read_env_file(path):
    try:
        local = settings.LAKEFLOW_FS_ROOTS.mapped(path)
        if local is None:  # saved before the rule: only /Workspace and /Volumes files are read
            raise EnvFileRefused(f"environment_variables file {path} is not a /Workspace or /Volumes path")
        # As the server: never through a symlink a task swapped in anywhere on the way, no FIFO.
        return read_beneath(settings.LAKEFLOW_FS_ROOTS.root_of(local), local, max_bytes=MAX_ENV_FILE_BYTES + 1)
    except ValueError as exc:  # leaves its root
        raise EnvFileRefused(f"environment_variables file {exc}") from None
    except OSError as exc:
        reason = ("does not exist" if isinstance(exc, FileNotFoundError) else
                  "passes through a symbolic link" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else
                  f"cannot be read ({exc.strerror or exc})")
        raise EnvFileRefused(f"environment_variables file {path} {reason}") from None


def data_access(result):
    """What the attempt reported it read and wrote, for the lineage app (None: nothing)."""
    report = {"sql": result.sql_ran} if result.sql_ran and result.sql_ran["statements"] else {}
    if result.declared_lineage:
        report["declared"] = result.declared_lineage
    if result.dbt_ran:
        report["dbt"] = result.dbt_ran
    return report or None


def readable_result(result):
    """What the task reported, as text both databases store: its files may hold a NUL or a lone
    surrogate (json.load reads "\\udfff" as one), which PostgreSQL refuses and pages cannot show."""
    return dataclasses.replace(result, **{field.name: readable(getattr(result, field.name))
                                          for field in dataclasses.fields(result)})


def executed_notebook(spec):
    """The saved notebook with its outputs, for notebook tasks that got as far as writing it
    (a regular file: the task may have left a symlink there instead)."""
    import os
    import stat

    try:
        found = spec.executed_path and stat.S_ISREG(os.lstat(spec.executed_path).st_mode)
    except OSError:
        found = False
    return spec.executed_path if found else ""


def finish(attempt, ending, **fields):
    """The claimed attempt's end (as loaded: finish_attempt need not read what it belongs to)."""
    return reconnecting(lambda: finish_attempt(attempt.id, ending, loaded=attempt, **fields))


def fail(attempt, code, message, **fields):  # fields may hold the handoff
    finish(attempt, endings.attempt_ended(R.FAILED, message, code=code), error=message, **fields)
    return "failed"


def still_running(attempt_id):
    """False once a cancel (TERMINATING) or the reaper took the attempt away from us."""
    state = TaskRun.objects.filter(id=attempt_id).values_list("life_cycle_state", flat=True).first()
    return state == L.RUNNING


def beat(attempt_id, **fields):
    TaskRun.objects.filter(id=attempt_id, life_cycle_state__in=[L.RUNNING, L.TERMINATING]).update(
        heartbeat_at=timezone.now(), **fields
    )
