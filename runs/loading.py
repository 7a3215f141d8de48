"""What the run state machine reads: a run (locked), its job version and graph (cached: versions
never change), its tasks' settings, its attempts and their statuses for the planner."""

from collections import OrderedDict, namedtuple
from datetime import datetime, timezone as dt_timezone

from django.db import connection

from jobs.models import JobVersion
from jobs.spec.settings import task_type_of
from runs.engine.graph import TaskStatus, graph_from_tasks
from runs.engine.partial import restrict_tasks
from runs.engine.planner import planned_by_focus
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L, RunResultState as R
from runs.models import Run, TaskRun

# Task types that run inside the worker, without a task process of their own.
CONTROL_FLOW_TYPES = ("condition_task", "for_each_task", "run_job_task")
# Their attempts stay RUNNING while iterations or a child run work: no heartbeat to watch.
WAITING_TYPES = ("for_each_task", "run_job_task")
# A run that is being worked on (its tasks change).
WORKING_RUN_STATES = (L.RUNNING, L.TERMINATING)


def to_ms(moment):
    return int(moment.timestamp() * 1000) if moment else None


def from_ms(ms):
    return datetime.fromtimestamp(ms / 1000, tz=dt_timezone.utc)


def lock_run(run_id):
    """Serialize changes to one run, inside a transaction: SELECT ... FOR UPDATE holds the row lock
    until commit on Postgres (and reads the row as the last holder committed it); on SQLite the
    transaction itself holds the one write lock (BEGIN IMMEDIATE)."""
    run = Run.objects.select_for_update(of=("self",)).select_related("job").get(id=run_id)
    run.job_version = job_version(run.job_version_id)
    return run


def share_run(run_id):
    """Hold the run's row against a run lock (Postgres FOR KEY SHARE) before changing one of its
    attempts outside that lock. A claim's event row checks its run with this same lock at commit
    (deferred foreign keys): taken there, after the attempt's row, it deadlocked with a finish
    holding the run lock and claiming that attempt for its handoff. Locks go run, then attempts.
    SQLite's one writer needs none."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(Run._meta.db_table)} WHERE id = %s FOR KEY SHARE",
                           [run_id])


def lock_run_of(attempt_id):
    """lock_run for the run of an attempt, found and locked in one statement; None if no such attempt."""
    run = Run.objects.select_for_update(of=("self",)).select_related("job").filter(task_runs__id=attempt_id).first()
    if run is not None:
        run.job_version = job_version(run.job_version_id)
    return run


_versions = OrderedDict()
VERSIONS_KEPT = 1024


def job_version(version_id):
    """Versions never change, so each process reads (and parses) a version's settings once:
    every finish locks its run, and a wide job's settings are most of what that reads. The
    least recently used go first (a clock firing hundreds of jobs a pass keeps them all)."""
    version = _versions.get(version_id)
    if version is None:
        version = _versions[version_id] = JobVersion.objects.get(id=version_id)
        if len(_versions) > VERSIONS_KEPT:
            _versions.popitem(last=False)
    else:
        _versions.move_to_end(version_id)
    return version


_per_version_caches = []


def per_version(derive):
    """``derive(settings)``, computed once per job version and process (versions never change):
    for what a state change's path asks about a run's settings, answered from memory."""
    cache = {}
    _per_version_caches.append(cache)

    def cached(version_id):
        found = cache.get(version_id)
        if found is None:
            if len(cache) >= 4096:
                cache.clear()
            found = cache[version_id] = derive(job_version(version_id).settings)
        return found

    cached.__doc__ = derive.__doc__
    return cached


def forget_per_version():
    """Tests: ids are reused across rolled-back tests."""
    for cache in _per_version_caches:
        cache.clear()


_graphs = {}


def graph_for_version(version, only=None):
    """The planner's graph of a job version (limited to `only`, for a partial run).

    Versions are immutable, so graphs are cached per process (like the versions: ``job_version``)."""
    cache_key = (version.id, tuple(only) if only is not None else None)
    graph = _graphs.get(cache_key)
    if graph is None:
        if len(_graphs) >= 256:
            _graphs.clear()
        tasks = restrict_tasks(version.settings.get("tasks", []), only)
        graph = _graphs[cache_key] = graph_from_tasks(tasks)
    return graph


def graph_for_run(run):
    return graph_for_version(run.job_version, run.only_tasks)


_focus = {}
_per_version_caches.append(_focus)  # forgotten with them


def focus_of(run, graph, changed):
    """planned_by_focus(the run's graph, changed), once per job version and tasks (versions never
    change): (the tasks a change of ``changed`` can affect now, the other tasks they read)."""
    key = (run.job_version_id, tuple(run.only_tasks) if run.only_tasks is not None else None, tuple(sorted(changed)))
    found = _focus.get(key)
    if found is None:
        if len(_focus) >= 4096:
            _focus.clear()
        found = _focus[key] = planned_by_focus(graph, changed)
    return found


def task_settings(version, task_key):
    for task in version.settings.get("tasks", []):
        if task["task_key"] == task_key:
            return task
    return None


def attempt_task_settings(version, attempt):
    """The task dict an attempt runs: the nested task for a for-each iteration."""
    if not attempt.for_each_key:
        return task_settings(version, attempt.task_key)
    wrapper = task_settings(version, attempt.for_each_key)
    nested = ((wrapper or {}).get("for_each_task") or {}).get("task")
    return nested if isinstance(nested, dict) and nested.get("task_key") == attempt.task_key else None


def new_task_runs(run, tasks, now, repair=None):
    """BLOCKED attempt rows for top-level tasks (dicts of the job's settings)."""
    return TaskRun.objects.bulk_create([
        TaskRun(run=run, repair=repair, task_key=task["task_key"], task_type=task_type_of(task) or "",
                created_at=now)
        for task in tasks
    ])


HEAVY_COLUMNS = ("resolved_values", "task_values", "sql_output", "error", "error_trace", "iteration_input",
                 "notebook_result", "state_message")


def current_attempts(run):
    """The latest attempt of every top-level task (for-each iterations are not tasks of the run)."""
    # The big columns stay in the database: every finished task reads all of its run's attempts.
    attempts = run.task_runs.filter(is_current=True, for_each_key="").defer(*HEAVY_COLUMNS)
    return {attempt.task_key: attempt for attempt in attempts}


def status_of(attempt):
    return TaskStatus(
        task_key=attempt.task_key,
        life_cycle_state=L(attempt.life_cycle_state),
        result_state=R(attempt.result_state) if attempt.result_state else None,
        attempt_number=attempt.attempt_number,
        start_time_ms=to_ms(attempt.started_at),
        outcome=attempt.outcome,
    )


STATUS_COLUMNS = ("id", "task_key", "task_type", "life_cycle_state", "result_state", "attempt_number",
                  "started_at", "outcome")
StatusRow = namedtuple("StatusRow", STATUS_COLUMNS)


def current_status_rows(run, keys=None):
    """What the planner reads of every top-level task's latest attempt (or of ``keys``), as plain
    tuples: this is read under the run lock (on SQLite, the one write lock), and model instances
    cost several times as much as the query."""
    rows = run.task_runs.filter(is_current=True, for_each_key="")
    if keys is not None and len(keys) <= 500:  # more: the whole run is one simpler query
        rows = rows.filter(task_key__in=sorted(keys))
    return {row[1]: StatusRow(*row) for row in rows.values_list(*STATUS_COLUMNS)}


def current_attempt_rows(run, keys):
    """current_status_rows(run, keys) and those attempts themselves, by id, in one read (for a
    few keys: model instances cost several times as much as tuples)."""
    return rows_of(list(run.task_runs.filter(is_current=True, for_each_key="", task_key__in=sorted(keys))
                        .defer(*HEAVY_COLUMNS)))


def rows_of(attempts):
    """The planner's rows of ``attempts`` (loaded, or just inserted with their ids) and the
    attempts by id: what current_attempt_rows reads."""
    return ({a.task_key: StatusRow(*(getattr(a, column) for column in STATUS_COLUMNS)) for a in attempts},
            {a.id: a for a in attempts})


def has_unfinished_tasks(run):
    """Whether any top-level task's latest attempt has not finished (the run cannot end yet)."""
    return run.task_runs.filter(is_current=True, for_each_key="").exclude(
        life_cycle_state__in=FINISHED_LIFE_CYCLES).exists()


def attempts_by_id(ids):
    return TaskRun.objects.defer(*HEAVY_COLUMNS).in_bulk(ids) if ids else {}
