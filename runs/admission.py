"""New runs and the max_concurrent_runs gate: queue, skip or start.

Admission decisions for one job are serialized by bumping Job.admission_seq first in the
transaction (a row lock on Postgres, the write lock on SQLite), so two nodes never both
take the last free slot.
"""

from datetime import timedelta
from collections import defaultdict
from itertools import groupby

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from jobs.models import Job
from jobs.permissions import run_as_identity
from jobs.spec.settings import task_type_of
from runs.dispatch import advance_locked, end_broken_run
from runs.engine import endings
from runs.engine.parameters import effective_job_parameters
from runs.engine.states import SLOT_HOLDING_RUN_LIFE_CYCLES, RunLifeCycleState as L
from runs.events import record
from runs.isolation import isolated
from runs.loading import graph_for_version, lock_run, new_task_runs, rows_of
from runs.models import Run, RunEvent, TaskRun
from runs.reactions import after_commit, has_durable_reactions, reacts_to
from runs.transitions import end_run


class RunRefused(ValueError):
    """The request cannot make a run; the message says why (an API 400)."""


def create_run(job, *, version=None, job_parameters=None, trigger=Run.Trigger.ONE_TIME,
               run_type=Run.RunType.JOB_RUN, run_name=None, idempotency_token=None, creator=None,
               queue_enabled=None, only=None, parent_task_run=None, trigger_time=None, trigger_slot=None,
               trigger_details=None, legacy_parameters=None, now=None, also=None):
    """Make a run of job and admit it if a slot is free. Returns (run, created).

    A second run for the same schedule slot (trigger_slot) is refused by a unique constraint:
    the caller gets (the run that slot already made, False). also(run), if given, writes what
    goes with a new run in its transaction (a trigger's decision), with the run as admitted."""
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
                admit_after_commit(run)
            if also is not None:
                run.refresh_from_db(fields=["life_cycle_state", "state_message"])
                also(run)
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


def admit_after_commit(run):
    """A new run left waiting is admitted again once its transaction commits: a run of the job
    that ended meanwhile, whose end this transaction's admission did not see (Postgres, READ
    COMMITTED), may have reacted before this run was visible, and so found nothing queued
    (admit_next_queued_runs). The clock's sweep stays the net for a crash in between."""
    if run.life_cycle_state == L.QUEUED:
        job_id = run.job_id
        transaction.on_commit(lambda: admit_queued_runs(job_id), robust=True)


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
                    started.append(run.id)
                    # A run may end in its first step (conditions only): its slot is free again.
                    active += Run.objects.filter(id=run.id, life_cycle_state__in=SLOT_HOLDING_RUN_LIFE_CYCLES).exists()
            elif not run.queue_enabled or limit == 0:
                end_run(run, endings.skipped_at_admission(limit), now, from_states=(L.QUEUED,))
        return started


@reacts_to("run.finished", alone=True)  # takes the job's admission lock
def admit_next_queued_runs(event):
    """A run ended: its slot may start the job's next queued run (the clock's sweep of queued
    runs is the safety net for a slot freed without an event).

    Nothing queued, nothing to do, and no admission lock to take: a run queued by a transaction
    that commits after this look is admitted once it commits (admit_after_commit), and that
    admission sees this run's end, committed before this reaction ran."""
    job_id = event.run.job_id
    if Run.objects.filter(job_id=job_id, life_cycle_state=L.QUEUED).exists():
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


# --- many schedule slots at once: the clock's batch ------------------------------------------


def lock_jobs(job_ids):
    """Take the admission locks of the jobs of `job_ids` that nobody else holds (another clock's
    batch, a worker admitting a run), in id order, and return those jobs as they are under the
    lock: {id: job}. Whoever admits a run of one of them meanwhile waits for this transaction;
    a job left out is the caller's to fire the one-job way, which waits for its lock."""
    jobs = Job.objects.filter(id__in=sorted(job_ids)).order_by("id").select_related("creator")
    if connection.features.has_select_for_update_skip_locked:
        jobs = jobs.select_for_update(skip_locked=True, of=("self",))
    return {job.id: job for job in jobs}  # SQLite: the IMMEDIATE transaction already holds the write lock


def slot_run(job, version, slot, now, owners=None):
    """The unsaved run of a schedule slot, as create_run makes it (trigger PERIODIC); ``owners``:
    jobs.permissions.owners_of() for the lot."""
    settings = version.settings
    return Run(
        job=job, job_version=version, run_type=Run.RunType.JOB_RUN, trigger=Run.Trigger.PERIODIC,
        run_name=settings.get("run_name") or settings.get("name") or "", creator=None,
        run_as=run_as_identity(job, settings, owners), life_cycle_state=L.QUEUED,
        queue_enabled=bool((settings.get("queue") or {}).get("enabled", False)),
        job_parameters=effective_job_parameters(settings.get("parameters", []), None),
        overriding_parameters=None, idempotency_token=None, only_tasks=None, parent_task_run=None,
        trigger_time=slot, trigger_slot=slot, trigger_details=None, created_at=now)


def create_slot_runs(runs, now):
    """Insert the runs of many schedule slots (slot_run's, of jobs locked with lock_jobs) and admit
    them, in the caller's transaction, with a few statements for the lot: one insert of the runs,
    of their events and of their first attempts; then each started run's first planner step.
    A job with free slots and nothing queued starts its run at once, as admit_queued_runs would;
    any other goes the one-job way (admit_queued_runs: queue order, queue or skip). Returns the
    runs with their life_cycle_state and state_message as create_run would.

    Raises IntegrityError if a slot already has its run: the caller's transaction is then spoilt,
    and it fires those slots one by one with create_run instead."""
    if not runs:
        return []
    Run.objects.bulk_create(runs)
    queued = [(run, "run.queued", {"trigger": Run.Trigger.PERIODIC, "reason": queued_reason(Run.Trigger.PERIODIC, None)})
              for run in runs]
    record_each(queued, now)
    job_ids = {run.job_id for run in runs}
    new_ids = [run.id for run in runs]
    active = dict(Run.objects.filter(job_id__in=job_ids, life_cycle_state__in=SLOT_HOLDING_RUN_LIFE_CYCLES)
                  .values("job_id").annotate(n=Count("id")).values_list("job_id", "n"))
    waiting = set(Run.objects.filter(job_id__in=job_ids, life_cycle_state=L.QUEUED).exclude(id__in=new_ids)
                  .values_list("job_id", flat=True).distinct())
    at_once, one_by_one = [], []
    for run in runs:
        limit, in_use = max_concurrent_runs(run.job), active.get(run.job_id, 0)
        if run.job_id in waiting or in_use >= limit:
            waiting.add(run.job_id)  # the job's later runs of this batch queue behind this one
            one_by_one.append(run)
        else:
            active[run.job_id] = in_use + 1
            at_once.append((run, f"admitted: {in_use} of the job's {limit} concurrent run(s) in use"))
    start_new_runs(at_once, now)
    for run in one_by_one:
        if run.id not in admit_queued_runs(run.job_id, now):
            waiting_or_skipped(run, run.job, now)
            admit_after_commit(run)
    if one_by_one:
        ended = {row["id"]: row for row in Run.objects.filter(id__in=[run.id for run in one_by_one]).values(
            "id", "life_cycle_state", "state_message")}
        for run in one_by_one:
            run.life_cycle_state, run.state_message = ended[run.id]["life_cycle_state"], ended[run.id]["state_message"]
    return runs


def start_new_runs(admitted, now):
    """admit_run for runs made in this transaction (no one else sees them: no run lock to take),
    with one insert for all their attempts and one for their run.started events."""
    for timeout, group in groupby(sorted(admitted, key=lambda pair: run_timeout(pair[0])),
                                  key=lambda pair: run_timeout(pair[0])):
        Run.objects.filter(id__in=[run.id for run, _ in group]).update(
            life_cycle_state=L.RUNNING, started_at=now, timeout_at=now + timedelta(seconds=timeout) if timeout else None,
            state_message="")
    created = TaskRun.objects.bulk_create([
        TaskRun(run=run, task_key=task["task_key"], task_type=task_type_of(task) or "", created_at=now)
        for run, _ in admitted for task in run.job_version.settings["tasks"]])
    for run, _ in admitted:
        run.life_cycle_state, run.started_at, run.state_message = L.RUNNING, now, ""
    record_each([(run, "run.started", {"reason": reason}) for run, reason in admitted], now)
    # The first step plans from the rows just inserted (with their ids), not from a read of them.
    by_run = defaultdict(list)
    for attempt in created:
        by_run[attempt.run_id].append(attempt)
    for run, _ in admitted:
        attempts = by_run[run.id]
        if attempts and all(attempt.pk is not None for attempt in attempts):
            rows, loaded = rows_of(attempts)
            advance_locked(run, now, rows=rows, loaded=loaded)
        else:  # a database that does not return inserted ids
            advance_locked(run, now)


def run_timeout(run):
    return run.job_version.settings.get("timeout_seconds") or 0


def record_each(entries, now):
    """runs.events.record for many runs' events in one insert: entries [(run, event_type, data)]."""
    events = []
    for run, event_type, data in entries:
        event = RunEvent(run=run, task_run=None, type=event_type, at=now, data=data)
        event.reactions_pending = has_durable_reactions(event) or None
        events.append(event)
    after_commit(RunEvent.objects.bulk_create(events))
