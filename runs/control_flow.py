"""Control-flow tasks, run without a task process (reference §2.4).

- condition_task: resolve both operands, compare, finish with outcome "true"/"false"; in the
  planner step that makes it ready (evaluate_conditions), or in a worker if that failed.
- for_each_task: one iteration row per input element; the for-each attempt stays RUNNING while
  `advance_for_each` (called from every planner step of the run) starts, retries and cancels
  iterations, and finishes it when the last one is done.
- run_job_task: start a run of another job and stay RUNNING; the child run's end settles it.

Each start happens in one transaction with the claim, so a worker that dies half-way leaves the
attempt PENDING for the clock to hand out again, never RUNNING with nothing behind it.
"""

import json
import logging
import threading

from django.db import transaction
from django.utils import timezone

from jobs.spec.refs import find_references, resolve
from jobs.spec.settings import task_type_of
from jobs.models import Job
from runs.admission import RunRefused, create_run
from runs.broker import enqueue_on_commit
from runs.dispatch import (advance_after_end, advance_locked, cancel_run, end_broken_run, evaluates_conditions,
                           finish_attempt)
from runs.engine import endings
from runs.engine.condition import ConditionError, evaluate_condition, outcome_text
from runs.engine.parameters import ParametersInvalid
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L, RunResultState as R, TerminationCode
from runs.events import gathered, record, savepoint
from runs.for_each import create_iterations, current_iterations
from runs.isolation import each_isolated
from runs.loading import attempt_task_settings, lock_run_of
from runs.models import Run, TaskRun
from runs.reactions import reacts_to
from runs.resolution import fact_keys, reference_context, upstream_facts
from runs.transitions import claimed_as_loaded, end_attempt

log = logging.getLogger(__name__)


# A run_job_task chain deeper than this is refused at run time (save time rejects cycles).
MAX_RUN_JOB_DEPTH = 10


_evaluating = threading.local()  # the condition attempts the outermost evaluate_conditions has yet to do


@evaluates_conditions
def evaluate_conditions(run, attempts, now, handoff=None):
    """Claim, evaluate and finish PENDING condition attempts of ``run`` (whose lock the caller
    holds, in its transaction) at ``now``, when the planner step that started them is done. A
    condition is a comparison of resolved values: evaluated where it becomes ready, it costs no
    broker message, claim transaction or worker, and a run of conditions decides in one step
    (Databricks evaluates them in its control plane too).

    Finishing one plans its children, which may start more conditions: those join the outermost
    call's list (no recursion however long a chain of conditions), which does at most
    CONDITIONS_PER_STEP and sends the rest to workers. ``handoff``: the finishing
    worker's, which may take what the conditions make ready. One that fails unexpectedly is
    rolled back to PENDING alone and goes to the broker (execute_control_flow) instead."""
    waiting = getattr(_evaluating, "attempts", None)
    if waiting is not None:
        waiting.extend((run, attempt, handoff) for attempt in attempts)
        return
    _evaluating.attempts = waiting = [(run, attempt, handoff) for attempt in attempts]
    try:
        for _ in range(CONDITIONS_PER_STEP):
            if not waiting:
                return
            run, attempt, handoff = waiting.pop(0)
            evaluate_here(run, attempt, now, handoff)
        # The rest go to workers (PENDING, marked dispatched): a step's work stays bounded however
        # many conditions it makes ready (a run-now request, the clock's lot of schedule slots).
        enqueue_on_commit([attempt.id for _, attempt, _ in waiting])
    finally:
        _evaluating.attempts = None


# How many conditions one planner step evaluates itself (with those they make ready in turn).
CONDITIONS_PER_STEP = 16


def evaluate_here(run, attempt, now, handoff):
    taken_before = handoff.attempt_id if handoff is not None else None
    try:
        with savepoint():  # a failure takes back this evaluation only (its events too)
            if not TaskRun.objects.filter(id=attempt.id, life_cycle_state=L.PENDING).update(
                    life_cycle_state=L.RUNNING, started_at=now, heartbeat_at=now):
                return
            claimed_as_loaded(attempt, now, "")
            attempt.run = run
            record(run, "task.running", attempt, now, task_key=attempt.task_key,
                   attempt_number=attempt.attempt_number, reason="evaluated when it became ready")
            start_claimed(run, attempt, now, handoff)
    except Exception:
        log.exception("Condition task run %s could not be evaluated in its run's step; it goes to a worker", attempt.id)
        run.refresh_from_db(fields=["life_cycle_state", "result_state"])  # as the rollback left it
        if handoff is not None and handoff.attempt_id != taken_before:
            handoff.pop()  # its claim was rolled back too
        enqueue_on_commit([attempt.id])  # still PENDING, marked dispatched


def execute_control_flow(attempt_id):
    """Claim and start a control-flow attempt in one transaction; returns what happened."""
    now = timezone.now()
    with transaction.atomic(), gathered():  # its events in one INSERT (a child run's: its own)
        run = lock_run_of(attempt_id)
        if run is None:
            return "not claimed"
        claimed = TaskRun.objects.filter(id=attempt_id, life_cycle_state=L.PENDING).update(
            life_cycle_state=L.RUNNING, started_at=now, heartbeat_at=now
        )
        if not claimed:
            return "not claimed"
        attempt = TaskRun.objects.get(id=attempt_id)
        attempt.run = run  # the locked run: finish() goes on under its lock
        record(run, "task.running", attempt, now, task_key=attempt.task_key, attempt_number=attempt.attempt_number)
        return start_claimed(run, attempt, now)


def start_claimed(run, attempt, now, handoff=None):
    """Evaluate or start a control-flow attempt just claimed (RUNNING) under its run's lock;
    ``handoff``: a finishing worker's, for a condition's next task."""
    task = attempt_task_settings(run.job_version, attempt)
    if task is None:
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION,
                    f"Task {attempt.task_key} is not in the job's settings any more", now)
    # Only the tasks it may read (its upstream, those it names): often none, and no query.
    facts = upstream_facts(run, keys=fact_keys(run, attempt, task))
    kind = task_type_of(task)
    if kind == "condition_task":
        return run_condition(run, attempt, task, facts, now, handoff)
    if kind == "for_each_task":
        return start_for_each(run, attempt, task, facts, now)
    if kind == "run_job_task":
        return start_run_job(run, attempt, task, facts, now)
    return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION, f"{kind} is not a control-flow task", now)


def fail(attempt, code, message, now, handoff=None, **fields):
    finish(attempt, endings.attempt_ended(R.FAILED, message, code=code), now, handoff, error=message, **fields)
    return "failed"


def finish(attempt, ending, now, handoff=None, **fields):
    """finish_attempt for an attempt claimed in this transaction, under the lock of its run
    (attempt.run) taken then: no second read of either. Returns False if it had ended already."""
    if not end_attempt(attempt.run, attempt, ending, now, **fields):
        return False
    advance_after_end(attempt.run, attempt, ending, fields, now, handoff)
    return True


def _unresolved(text):
    return [ref.text for ref in find_references(text)]


# --- condition_task ------------------------------------------------------------------------


def run_condition(run, attempt, task, facts, now, handoff=None):
    block = task["condition_task"]
    ctx = reference_context(run, attempt, facts)
    left, right = (resolve(str(block.get(side, "")), ctx) for side in ("left", "right"))
    op = block.get("op", "")
    # Written with the attempt's end (one UPDATE).
    resolved = {"condition_task": {"op": op, "left": left, "right": right}}
    unresolved = _unresolved(left) + _unresolved(right)
    if unresolved:
        return fail(attempt, TerminationCode.RUN_EXECUTION_ERROR,
                    f"Condition operand {', '.join(unresolved)} could not be resolved", now, handoff,
                    resolved_values=resolved)
    try:
        outcome = outcome_text(evaluate_condition(op, left, right))
    except ConditionError as exc:
        return fail(attempt, TerminationCode.RUN_EXECUTION_ERROR, str(exc), now, handoff, resolved_values=resolved)
    finish(attempt, endings.attempt_ended(R.SUCCESS, f"Condition {left!r} {op} {right!r} is {outcome}"), now, handoff,
           outcome=outcome, resolved_values=resolved)
    return outcome


# --- for_each_task -------------------------------------------------------------------------


def resolve_inputs(raw, ctx):
    """The for-each inputs as a list, or ValueError saying what is wrong with them."""
    if isinstance(raw, list):
        return raw
    text = resolve(str(raw), ctx)
    unresolved = _unresolved(text)
    if unresolved:
        raise ValueError(f"for_each_task.inputs: {', '.join(unresolved)} could not be resolved")
    try:
        items = json.loads(text)
    except ValueError:
        raise ValueError(f"for_each_task.inputs must be a JSON array; got {text[:200]!r}") from None
    if not isinstance(items, list):
        raise ValueError(f"for_each_task.inputs must be a JSON array; got a {type(items).__name__}: {text[:200]!r}")
    return items


def start_for_each(run, attempt, task, facts, now):
    block = task["for_each_task"]
    try:
        items = resolve_inputs(block.get("inputs"), reference_context(run, attempt, facts))
    except ValueError as exc:
        return fail(attempt, TerminationCode.RUN_EXECUTION_ERROR, str(exc), now)
    nested = block["task"]
    TaskRun.objects.filter(id=attempt.id).update(
        resolved_values={"for_each_task": {"inputs": json.dumps(items), "concurrency": block.get("concurrency") or 1}}
    )
    # A repaired for-each keeps the iterations that succeeded on the same input: only the rest run again.
    kept = {
        row.iteration: row for row in current_iterations(run, attempt.task_key)
        if row.iteration < len(items) and row.result_state == R.SUCCESS and row.iteration_input == items[row.iteration]
        and row.task_key == nested["task_key"]
    }
    TaskRun.objects.filter(run=run, for_each_key=attempt.task_key, is_current=True).exclude(
        id__in=[row.id for row in kept.values()]).update(is_current=False)
    kind = task_type_of(nested) or ""
    create_iterations(TaskRun(run=run, repair_id=attempt.repair_id, task_key=nested["task_key"], task_type=kind,
                              for_each_key=attempt.task_key, created_at=now),
                      ((i, item) for i, item in enumerate(items) if i not in kept))
    record(run, "task.iterations_created", attempt, now, task_key=attempt.task_key, total=len(items), kept=len(kept),
           reason=f"{len(items)} inputs, {len(kept)} kept from the last time (they succeeded on the same input)")
    advance_locked(run, now)
    return f"{len(items)} iterations"


# --- run_job_task --------------------------------------------------------------------------


def run_job_depth(run):
    """How many run_job_task parents the run has above it."""
    depth, parent_task_run_id = 0, run.parent_task_run_id
    while parent_task_run_id and depth <= MAX_RUN_JOB_DEPTH:
        parent_task_run_id = TaskRun.objects.filter(id=parent_task_run_id).values_list(
            "run__parent_task_run_id", flat=True).first()
        depth += 1
    return depth


def start_run_job(run, attempt, task, facts, now):
    block = task["run_job_task"]
    ctx = reference_context(run, attempt, facts)
    parameters = {name: resolve(str(value), ctx) for name, value in (block.get("job_parameters") or {}).items()}
    TaskRun.objects.filter(id=attempt.id).update(
        resolved_values={"run_job_task": {"job_id": block.get("job_id"), "job_parameters": parameters}}
    )
    job = Job.objects.filter(id=block.get("job_id"), kind=Job.Kind.JOB, deleted_at__isnull=True).first()
    if job is None or job.current_version_id is None:
        return fail(attempt, TerminationCode.RESOURCE_NOT_FOUND, f"Job {block.get('job_id')} does not exist", now)
    if run_job_depth(run) >= MAX_RUN_JOB_DEPTH:
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION,
                    f"run_job_task chains are limited to {MAX_RUN_JOB_DEPTH} levels", now)
    try:
        child, _ = create_run(job, job_parameters=parameters or None, trigger=Run.Trigger.RUN_JOB_TASK,
                              creator=run.creator, parent_task_run=attempt, now=now)
    except (RunRefused, ParametersInvalid) as exc:
        return fail(attempt, TerminationCode.INVALID_RUN_CONFIGURATION, f"Cannot start job {job.id}: {exc}", now)
    record(run, "task.child_run_started", attempt, now, task_key=attempt.task_key, child_run_id=child.id,
           child_job_id=job.id)
    if child.life_cycle_state in FINISHED_LIFE_CYCLES:  # skipped at once (max_concurrent_runs, no queue)
        transaction.on_commit(lambda: settle_run_job_task(attempt.id))
    return f"started run {child.id}"


# How the parent task ends for each result of the child run ("follows the child's").
CHILD_RESULT_TO_TASK = {
    R.SUCCESS: R.SUCCESS,
    R.SUCCESS_WITH_FAILURES: R.SUCCESS,
    R.CANCELED: R.CANCELED,
    R.TIMEDOUT: R.TIMEDOUT,
}


def settle_run_job_task(attempt_id, now=None):
    """Finish a run_job_task attempt from its child run, if the child has ended. True if it did."""
    child = Run.objects.filter(parent_task_run_id=attempt_id).order_by("-id").first()
    if child is None or child.life_cycle_state not in FINISHED_LIFE_CYCLES:
        return False
    result = CHILD_RESULT_TO_TASK.get(child.result_state, R.FAILED)
    message = f"Run {child.id} of job {child.job_id} ended {child.result_state or child.life_cycle_state}"
    if child.state_message:
        message += f": {child.state_message}"
    return finish_attempt(attempt_id, endings.attempt_ended(result, message),
                          error=message if result == R.FAILED else "", now=now or timezone.now())


@reacts_to("run.finished", when=lambda event: event.run.parent_task_run_id is not None, atomic=False)
def settle_parent_task(event):
    """A run started by a run_job_task ended: its parent task follows. After the child's commit,
    in a transaction of its own (not atomic: apart from the event's other reactions, whose locks,
    the child job's admission among them, it must not hold while it locks the parent run, which
    start_run_job locks before the child's job): locking the parent run inside the child's
    (child first) while a cancel locks parent then child could deadlock on Postgres. Settling is
    idempotent (a compare-and-swap), as a reaction that is not atomic must be."""
    parent_id = Run.objects.filter(id=event.run_id).values_list("parent_task_run_id", flat=True).first()
    if parent_id:
        settle_run_job_task(parent_id)


def is_run_job_task(event):
    return (event.data or {}).get("task_type") == "run_job_task"


@reacts_to("task.terminating", "task.finished", when=is_run_job_task, atomic=False)
def cancel_child_runs(event):
    """A run_job_task is being canceled (or ended some other way, its child still running: a run
    the engine aborted): so are the runs it started, and it ends as they do (if it has not).
    Each child is canceled in a transaction of its own, then the parent settles in another: never
    a child's lock held while waiting for the parent's (dispatch locks parent, then children).
    Both steps are idempotent, as a reaction that is not atomic must be."""
    if event.task_run_id is None:
        return
    for child_id in Run.objects.filter(parent_task_run_id=event.task_run_id).order_by("id").values_list("id", flat=True):
        cancel_run(child_id, message="Canceled with the task that started it")
    settle_run_job_task(event.task_run_id)


def settle_waiting_tasks(now):
    """Clock step, a safety net: run_job_task attempts whose child ended (or whose cancel was
    not passed on) while the process that should have settled them died."""
    waiting = TaskRun.objects.filter(task_type="run_job_task", life_cycle_state__in=[L.RUNNING, L.TERMINATING])

    def settle(item):
        attempt_id, state = item
        if state == L.TERMINATING:
            for child_id in Run.objects.filter(parent_task_run_id=attempt_id).exclude(
                    life_cycle_state__in=FINISHED_LIFE_CYCLES).values_list("id", flat=True):
                cancel_run(child_id, now=now, message="Canceled with the task that started it")
        return bool(settle_run_job_task(attempt_id, now))

    def run_ends(item, why):
        run_id = TaskRun.objects.filter(id=item[0]).values_list("run_id", flat=True).first()
        if run_id is not None:
            end_broken_run(run_id, f"Task run {item[0]} (run_job_task) could not be settled: {why}", now)

    return each_isolated(list(waiting.values_list("id", "life_cycle_state")), settle, run_ends)
