"""Health rules: the clock watches running runs and task attempts against their
RUN_DURATION_SECONDS rules, and a finished task's reported STREAMING_BACKLOG_* figures against
theirs. A breach is a HealthWarning row (at most one per rule and occasion: the unique key, on any
number of clocks) and a run.health_warning event in the same transaction, which the run page
shows as a warning and notifications react to. A health rule never stops anything.
"""

import logging

from django.db import IntegrityError, transaction

from jobs.spec.notifications import BACKLOG_METRICS, RUN_DURATION, health_threshold
from notifications.models import HealthWarning
from runs.clock import clock_step
from runs.engine.states import RunLifeCycleState as L
from runs.events import record
from runs.loading import job_version, per_version, task_settings
from runs.models import Repair, Run, TaskRun
from runs.reactions import reacts_to

log = logging.getLogger(__name__)

WATCHED = (L.RUNNING, L.TERMINATING)
_warned = set()  # keys this process knows are taken: no insert attempt every pass


@per_version
def duration_thresholds(settings):
    """(the job's RUN_DURATION_SECONDS value or None, {task_key: value})."""
    tasks = {task["task_key"]: health_threshold(task) for task in settings.get("tasks") or []
             if isinstance(task, dict) and isinstance(task.get("task_key"), str)}
    return health_threshold(settings), {key: value for key, value in tasks.items() if value}


@clock_step
def watch_run_durations(now):
    """Warn once per run (or repair) and per task chain that runs longer than its rule allows."""
    warned = 0
    running = Run.objects.filter(life_cycle_state__in=WATCHED, started_at__isnull=False)
    # Only the runs of versions with a duration rule are read, whatever else is running.
    versions = set(running.values_list("job_version_id", flat=True).distinct())
    ruled = [v for v in versions if any(duration_thresholds(v))]
    if not ruled:
        return 0
    runs = running.filter(job_version_id__in=ruled).values_list("id", "job_version_id", "started_at", "repair_count")
    task_versions = {}
    for run_id, version_id, started_at, repair_count in runs:
        job_limit, task_limits = duration_thresholds(version_id)
        if task_limits:
            task_versions[run_id] = task_limits
        if not job_limit:
            continue
        occasion, since = "run", started_at
        if repair_count:
            repair = Repair.objects.filter(run_id=run_id).order_by("-id").values_list("id", "created_at").first()
            if repair is not None:
                occasion, since = f"repair-{repair[0]}", repair[1]
        seconds = (now - since).total_seconds()
        if seconds > job_limit:
            warned += warn(run_id, "", RUN_DURATION, occasion, job_limit, seconds, now,
                           f"The run has been running for {seconds:.0f} s, longer than its health rule's "
                           f"RUN_DURATION_SECONDS > {job_limit}")
    if task_versions:
        attempts = TaskRun.objects.filter(run_id__in=list(task_versions), life_cycle_state__in=WATCHED,
                                          for_each_key="", started_at__isnull=False).values_list(
            "id", "run_id", "task_key", "started_at", "original_attempt_id")
        for attempt_id, run_id, task_key, started_at, original_id in attempts:
            limit = task_versions[run_id].get(task_key)
            seconds = (now - started_at).total_seconds()
            if limit and seconds > limit:
                warned += warn(run_id, task_key, RUN_DURATION, f"attempt-{original_id or attempt_id}", limit, seconds,
                               now, f"Task {task_key} has been running for {seconds:.0f} s, longer than its "
                                    f"health rule's RUN_DURATION_SECONDS > {limit}")
    return warned


def warn(run_id, task_key, metric, occasion, threshold, observed, now, reason):
    """The warning and its event, once; 1 if this call made it."""
    key = (run_id, task_key, metric, occasion)
    if key in _warned:
        return 0
    made = 1
    try:
        with transaction.atomic():
            HealthWarning.objects.create(run_id=run_id, task_key=task_key, metric=metric, occasion=occasion,
                                         threshold=threshold, observed=observed, at=now)
            run = Run.objects.get(id=run_id)
            record(run, "run.health_warning", None, now, metric=metric, task_key=task_key, occasion=occasion,
                   threshold=threshold, observed=round(observed, 3), reason=reason)
    except IntegrityError:  # another clock (or an earlier pass of this one) made it
        made = 0
    # Remembered once the row is committed: inside a reaction whose transaction then rolls back,
    # the sweep's retry must not find the key taken and skip the warning for good.
    transaction.on_commit(lambda: _remember(key))
    return made


def _remember(key):
    if len(_warned) >= 100_000:
        _warned.clear()
    _warned.add(key)


@per_version
def _has_backlog_rules(settings):
    blocks = [settings, *(t for t in settings.get("tasks") or [] if isinstance(t, dict))]
    return any(health_threshold(block, metric) for block in blocks for metric in BACKLOG_METRICS)


def _reports_backlog(event):
    """Only tasks of versions with a STREAMING_BACKLOG_* rule (on the job or a task)."""
    return _has_backlog_rules(event.run.job_version_id)


@reacts_to("task.finished", when=_reports_backlog)
def check_reported_backlog(event):
    """STREAMING_BACKLOG_* rules, against the figures a task reported as task values of those
    names (dbutils.jobs.taskValues.set("STREAMING_BACKLOG_SECONDS", 420)): evaluated when the
    attempt ends, once per attempt and metric."""
    attempt = TaskRun.objects.filter(id=event.task_run_id).only("id", "run", "task_key", "task_values",
                                                                  "for_each_key").first()
    if attempt is None or attempt.for_each_key or not attempt.task_values:
        return
    version = job_version(event.run.job_version_id)
    settings, task = version.settings, task_settings(version, attempt.task_key)
    for metric in BACKLOG_METRICS:
        observed = attempt.task_values.get(metric)
        if isinstance(observed, bool) or not isinstance(observed, (int, float)):
            continue
        for task_key, block in ((attempt.task_key, task), ("", settings)):
            limit = health_threshold(block or {}, metric)
            if limit and observed > limit:
                warn(attempt.run_id, task_key, metric, f"attempt-{attempt.id}", limit, observed, event.at,
                     f"Task {attempt.task_key} reported {metric} = {observed:g}, above its health rule's {limit}")
