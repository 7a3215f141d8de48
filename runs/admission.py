"""New runs and the max_concurrent_runs gate: queue, skip or start.

Admission decisions for one job are serialized by bumping Job.admission_seq first in the
transaction (a row lock on Postgres, the write lock on SQLite), so two nodes never both
take the last free slot.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import Job
from jobs.permissions import run_as_identity
from runs.dispatch import advance_locked, end_broken_run
from runs.engine import endings
from runs.engine.parameters import effective_job_parameters
from runs.engine.states import SLOT_HOLDING_RUN_LIFE_CYCLES, RunLifeCycleState as L
from runs.events import record
from runs.isolation import isolated
from runs.loading import graph_for_version, lock_run, new_task_runs
from runs.models import Run
from runs.reactions import reacts_to
from runs.transitions import end_run


class RunRefused(ValueError):
    """The request cannot make a run; the message says why (an API 400)."""


def create_run(job, *, version=None, job_parameters=None, trigger=Run.Trigger.ONE_TIME,
               run_type=Run.RunType.JOB_RUN, run_name=None, idempotency_token=None, creator=None,
               queue_enabled=None, only=None, parent_task_run=None, trigger_time=None, trigger_slot=None,
               trigger_details=None, legacy_parameters=None, now=None):
    """Make a run of job and admit it if a slot is free. Returns (run, created).

    A second run for the same schedule slot (trigger_slot) is refused by a unique constraint:
    the caller gets (the run that slot already made, False)."""
    now = now or timezone.now()
    version = version or job.current_version
    settings = version.settings
    if idempotency_token:
        existing = Run.objects.filter(idempotency_token=idempotency_token).first()
        if existing:
            return existing, False
    if not settings.get("tasks"):
        raise RunRefused(f"Job {job.id} has no tasks to run")
    params = effective_job_parameters(settings.get("parameters", []), job_parameters)
    selected = only_tasks(version, only)
    if queue_enabled is None:
        queue_enabled = bool((settings.get("queue") or {}).get("enabled", False))
    try:
        with transaction.atomic():
            run = Run.objects.create(
                job=job,
                job_version=version,
                run_type=run_type,
                trigger=trigger,
                run_name=run_name or settings.get("run_name") or settings.get("name") or "",
                creator=creator,
                run_as=run_as_identity(job, settings),
                life_cycle_state=L.QUEUED,
                queue_enabled=queue_enabled,
                job_parameters=params,
                # legacy_parameters: run-now's notebook_params, python_params... (jobs/spec/api_2_0.py)
                overriding_parameters={**({"job_parameters": job_parameters} if job_parameters else {}),
                                       **(legacy_parameters or {})} or None,
                idempotency_token=idempotency_token or None,
                only_tasks=selected,
                parent_task_run=parent_task_run,
                trigger_time=trigger_time,
                trigger_slot=trigger_slot,
                trigger_details=trigger_details,
                created_at=now,
            )
            record(run, "run.queued", None, now, trigger=trigger, reason=queued_reason(trigger, creator))
            if run.id not in admit_queued_runs(job.id, now):
                waiting_or_skipped(run, job, now)
    except IntegrityError:
        # Two requests with one idempotency token, or two clocks firing one slot: the other made the run.
        existing = None
        if idempotency_token:
            existing = Run.objects.filter(idempotency_token=idempotency_token).first()
        if existing is None and trigger_slot is not None:
            existing = Run.objects.filter(job=job, trigger_slot=trigger_slot).first()
        if existing is None:
            raise
        return existing, False
    run.refresh_from_db()
    return run, True


def queued_reason(trigger, creator):
    who = f" by {creator.get_username()}" if creator is not None else ""
    return {Run.Trigger.ONE_TIME: f"run now{who}", Run.Trigger.PERIODIC: "its schedule's slot came",
            Run.Trigger.FILE_ARRIVAL: "new files arrived", Run.Trigger.TABLE: "its tables were updated",
            Run.Trigger.CONTINUOUS: "continuous: no run was active",
            Run.Trigger.RUN_JOB_TASK: "started by a run_job_task"}.get(trigger, f"trigger {trigger}")


def waiting_or_skipped(run, job, now):
    """Say why a new run did not start at once (a skipped one said so in its end)."""
    run.refresh_from_db(fields=["life_cycle_state"])
    if run.life_cycle_state == L.QUEUED:
        limit = max_concurrent_runs(job)
        record(run, "run.waiting", None, now,
               reason=f"the job already has {limit} active run(s), its max_concurrent_runs: it starts when one ends")


def only_tasks(version, only):
    """run-now `only` as the run's task keys, or None for the whole job."""
    if not only:
        return None
    from runs.engine.partial import OnlyInvalid, select_only

    try:
        return select_only(graph_for_version(version), list(only))
    except OnlyInvalid as exc:
        raise RunRefused(str(exc)) from exc


def admit_queued_runs(job_id, now=None):
    """Start queued runs in order while the job has free slots; skip those that may not wait."""
    now = now or timezone.now()
    with transaction.atomic():
        Job.objects.filter(id=job_id).update(admission_seq=F("admission_seq") + 1)
        job = Job.objects.select_related("current_version").get(id=job_id)
        limit = max_concurrent_runs(job)
        active = Run.objects.filter(job_id=job_id, life_cycle_state__in=SLOT_HOLDING_RUN_LIFE_CYCLES).count()
        started = []
        for run in Run.objects.filter(job_id=job_id, life_cycle_state=L.QUEUED).order_by("id"):
            if active < limit:
                reason = f"admitted: {active} of the job's {limit} concurrent run(s) in use"
                # A run that cannot start ends alone, saying why: the run that just finished and
                # the job's other queued runs go on.
                if isolated(lambda run_id: admit_run(run_id, now, reason), run.id, could_not_start):
                    active += 1
                    started.append(run.id)
            elif not run.queue_enabled or limit == 0:
                end_run(run, endings.skipped_at_admission(limit), now, from_states=(L.QUEUED,))
        return started


@reacts_to("run.finished")
def admit_next_queued_runs(event):
    """A run ended: its slot may start the job's next queued run (the clock's sweep of queued
    runs is the safety net for a slot freed without an event)."""
    job_id = Run.objects.filter(id=event.run_id).values_list("job_id", flat=True).first()
    if job_id is not None:
        admit_queued_runs(job_id, timezone.now())  # not event.at: a swept reaction starts runs now


def could_not_start(run_id, reason):
    end_broken_run(run_id, f"The run could not start: {reason}")


def max_concurrent_runs(job):
    if job.kind == Job.Kind.SUBMIT:
        return 1_000_000
    value = (job.settings or {}).get("max_concurrent_runs", 1)
    return value if isinstance(value, int) else 1


def admit_run(run_id, now, reason="admitted"):
    """QUEUED -> RUNNING: one BLOCKED attempt row per task, then the first planner step."""
    run = lock_run(run_id)
    if run.life_cycle_state != L.QUEUED:
        return False
    timeout = run.job_version.settings.get("timeout_seconds") or 0
    Run.objects.filter(id=run.id).update(
        life_cycle_state=L.RUNNING,
        started_at=now,
        timeout_at=now + timedelta(seconds=timeout) if timeout else None,
        state_message="",
    )
    run.life_cycle_state, run.started_at = L.RUNNING, now
    tasks = run.job_version.settings["tasks"]
    if run.only_tasks is not None:
        tasks = [task for task in tasks if task["task_key"] in set(run.only_tasks)]
    new_task_runs(run, tasks, now)
    record(run, "run.started", None, now, reason=reason)
    advance_locked(run, now)
    return True
