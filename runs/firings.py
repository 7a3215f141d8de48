"""How a trigger's firing becomes a run: the decision it records, the run it starts, and the
sql_condition gate between the two (reference §1.5). The clock's trigger steps
(runs/triggers.py) and the job-completion reaction (runs/job_completion.py) fire through here.

The gate. A condition's query may take up to LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS: evaluated in
the clock's step it would hold up every other trigger, retry and timeout, and outlast the
clock's lease (two clocks at once). So a firing of a trigger with a sql_condition is kept in its
state's pending_fire with a claim (a fresh token) and handed to a worker through the broker
(evaluate_firing). The worker's answer counts only while the claim is still the trigger's, and
the run starts in the transaction that ends the claim: exactly once, however often the message
is delivered. A claim not answered by its retry_at (a worker killed, a message lost) is handed
out again by the clock (retry_pending_firing), as is a firing whose evaluation failed,
ERROR_RETRY_EVERY later. One evaluation at a time per trigger, so that the condition's kept
value (RESULT_VALUE_CHANGES) moves in order.
"""

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import Job
from jobs.permissions import owners_of
from runs.admission import RunRefused, create_run, create_slot_runs, lock_jobs, slot_run
from runs.engine.states import RunLifeCycleState as L
from runs.loading import job_version
from runs.models import Run, RunEvent, TriggerDecision, TriggerState
from runs.sql_conditions import KILL_GRACE_SECONDS, ConditionResult, evaluate_sql_condition

log = logging.getLogger(__name__)

Kind = TriggerState.Kind
ERROR_RETRY_EVERY = timedelta(seconds=10)
CAS_TRIES = 20
UNFINISHED_RUN_STATES = (L.QUEUED, L.PENDING, L.RUNNING, L.TERMINATING)
NODE = f"{socket.gethostname()}:{os.getpid()}"


def decided(job, kind, reason, now, slot=None, run=None, position=0):
    decision_row(job.id if hasattr(job, "id") else job, kind, reason, now, slot, run, position).save(force_insert=True)


def start_triggered_run(state, now, reason, slot=None, by="the clock", **kwargs):
    """The trigger's run, or None when the job refuses it (its trigger state then says why) or
    when it has a sql_condition: that firing is handed to a worker, which evaluates the condition
    and starts the run (park_firing). Either way the decision is recorded with `reason`.
    `kwargs` are create_run's trigger, trigger_time and trigger_details."""
    if state.config.get("sql_condition"):
        park_firing(state, now, firing_of(reason, slot, by, kwargs))
        return None, False
    return create_triggered_run(state, now, reason, slot, by, **kwargs)


def create_triggered_run(state, now, reason, slot=None, by="the clock", **kwargs):
    """The trigger's run, or None when the job refuses it; the decision recorded with `reason`."""
    job, position = state.job, state.position

    def decided_with(run):  # in the run's transaction: no run without its decision
        TriggerState.objects.filter(id=state.id).update(last_run=run)
        if run.life_cycle_state == L.SKIPPED:
            decided(job, TriggerDecision.Kind.REFUSED, f"{reason}; its run was skipped: {run.state_message}", now,
                    slot, run, position=position)
        else:
            decided(job, TriggerDecision.Kind.FIRED, f"{reason}; fired by {by} on {NODE}", now, slot, run,
                    position=position)

    try:
        run, created = create_run(job, now=now, trigger_slot=slot, also=decided_with, **kwargs)
    except RunRefused as exc:
        log.warning("trigger of job %s could not start a run: %s", job.id, exc)
        TriggerState.objects.filter(id=state.id).update(last_error=f"The trigger could not start a run: {exc}")
        decided(job, TriggerDecision.Kind.REFUSED, f"{reason}; the job refused the run: {exc}", now, slot,
                position=position)
        return None, False
    if not created:  # the slot's run another clock made
        TriggerState.objects.filter(id=state.id).update(last_run=run)
    return run, created


# --- many schedule slots in one transaction: the clock's batch ----------------------------------


def fire_slots_together(plans, now, advance):
    """Fire the schedule slots of many triggers (without a sql_condition) in the caller's
    transaction: what fire_schedule and create_triggered_run do one trigger at a time, in a few
    statements for the lot. plans: [(state, decision)] with decision an engine SlotDecision;
    advance(state, old_check_at, **fields) is the trigger's compare-and-swap: a trigger another
    clock moved since it was read fires nothing here. Returns (runs started, states left): the
    states whose job's admission lock another transaction holds, or which cannot fire together
    (a job without tasks, two triggers of a job on one slot) are the caller's to fire one by one.

    A slot that already has its run raises IntegrityError (the unique constraint stays the last
    word): the caller's transaction is then spoilt, and it fires the lot one by one instead."""
    jobs = lock_jobs({state.job_id for state, decision in plans if decision.fire is not None})
    owners = owners_of(jobs)  # who each run executes as, unless its job says: one query for the lot
    left, fired, decisions, slots = [], [], [], set()
    for state, decision in plans:
        if decision.fire is None:
            advance(state, state.next_check_at, next_check_at=decision.next_check)
            continue
        job = jobs.get(state.job_id)
        version = job_version(job.current_version_id) if job is not None and job.current_version_id else None
        if version is None or not version.settings.get("tasks") or (job.id, decision.fire) in slots:
            left.append(state)
            continue
        job.current_version = version  # job.settings from the cache, not one more query
        if not advance(state, state.next_check_at, next_check_at=decision.next_check, last_slot=decision.fire,
                       last_fired_at=now, last_error=""):
            continue  # another clock took this slot's step
        slots.add((job.id, decision.fire))
        if decision.missed:
            decisions.append(decision_row(job.id, TriggerDecision.Kind.SKIPPED, decision.reason, now, decision.fire,
                                          position=state.position))
        fired.append((state, decision, slot_run(job, version, decision.fire, now, owners)))
    create_slot_runs([run for _, _, run in fired], now)
    for state, decision, run in fired:
        if run.life_cycle_state == L.SKIPPED:
            decisions.append(decision_row(run.job_id, TriggerDecision.Kind.REFUSED, f"{decision.reason}; its run was "
                                          f"skipped: {run.state_message}", now, decision.fire, run, state.position))
        else:
            decisions.append(decision_row(run.job_id, TriggerDecision.Kind.FIRED, f"{decision.reason}; fired by the "
                                          f"clock on {NODE}", now, decision.fire, run, state.position))
    TriggerDecision.objects.bulk_create(decisions)
    TriggerState.objects.bulk_update([TriggerState(id=state.id, last_run=run) for state, _, run in fired],
                                     ["last_run"])
    return len(fired), left


def decision_row(job_id, kind, reason, now, slot=None, run=None, position=0):
    return TriggerDecision(job_id=job_id, position=position, kind=kind, reason=reason, at=now, slot=slot, run=run,
                           node=NODE)


# --- the sql_condition gate: the firing waits in pending_fire, handed to a worker --------------


def iso(moment):
    return moment.isoformat() if moment else None


def firing_of(reason, slot, by, fire):
    """A firing as pending_fire keeps it (JSON): why, its slot, and create_run's trigger fields."""
    return {"reason": reason, "slot": iso(slot), "by": by, "trigger": fire.get("trigger"),
            "trigger_details": fire.get("trigger_details"), "trigger_time": iso(fire.get("trigger_time"))}


def evaluation_lease():
    """How long a handed-out firing is its worker's: the query's limit, the kill's grace, and
    some time waiting in the broker's queue."""
    return timedelta(seconds=settings.LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS + KILL_GRACE_SECONDS + 20)


def handed_out(firing, now):
    """pending_fire for `firing` handed to a worker at `now`."""
    return {**firing, "claim": uuid.uuid4().hex, "retry_at": iso(now + evaluation_lease())}


def in_evaluation(pending, now):
    """Whether `pending` (a state's pending_fire) is with a worker whose lease still runs."""
    return bool(pending and pending.get("claim") and datetime.fromisoformat(pending["retry_at"]) > now)


def earliest(*moments):
    return min(filter(None, moments), default=None)


def send_evaluation(state_id, claim):
    """Hand the firing to a worker (a fast twin replaces this in unit tests)."""
    from django_q.tasks import async_task

    async_task("runs.firings.evaluate_firing", state_id, claim,
               task_name=f"sql-condition-{state_id}-{claim[:8]}")


def send_on_commit(state_id, claim):
    # robust: with the broker down, the clock hands the firing out again once its lease is over.
    transaction.on_commit(lambda: send_evaluation(state_id, claim), robust=True)


def park_firing(state, now, firing):
    """Keep `firing` in pending_fire and hand it to a worker. One evaluation at a time (the
    condition's kept value then moves in order): a firing that comes while an earlier one is
    being evaluated does not fire, and says so; one that waits to be evaluated again after a
    failure is replaced by the newer firing."""
    for _ in range(CAS_TRIES):
        current = TriggerState.objects.filter(id=state.id, paused=False).values(
            "version", "pending_fire", "next_check_at").first()
        if current is None:
            return False  # paused or removed meanwhile
        if in_evaluation(current["pending_fire"], now):
            if state.kind != Kind.CONTINUOUS:  # its step asks every few seconds: no news in that
                decided(state.job_id, TriggerDecision.Kind.SKIPPED,
                        f"{firing['reason']}; not fired: its sql_condition is still being evaluated for an earlier "
                        f"firing ({current['pending_fire']['reason']})", now, moment(firing["slot"]),
                        position=state.position)
            return False
        if hand_out(state.id, current["version"], firing, current["next_check_at"], now):
            return True
    raise RuntimeError(f"trigger {state.position} of job {state.job_id} kept changing while a firing was parked")


def hand_out(state_id, version, firing, next_check_at, now):
    """Write `firing` with a new claim if the state is still at `version`, and send it on commit."""
    pending = handed_out(firing, now)
    if not TriggerState.objects.filter(id=state_id, version=version, paused=False).update(
            pending_fire=pending, version=F("version") + 1,
            next_check_at=earliest(next_check_at, datetime.fromisoformat(pending["retry_at"]))):
        return False
    send_on_commit(state_id, pending["claim"])
    return True


def retry_pending_firing(state_id, now):
    """Hand out again a firing whose evaluation failed, once its retry time has come, or whose
    worker did not answer within its lease; 1 if it did."""
    state = TriggerState.objects.filter(id=state_id, paused=False).values(
        "version", "pending_fire", "next_check_at").first()
    pending = state["pending_fire"] if state is not None else None
    if not pending:
        return 0
    retry_at = datetime.fromisoformat(pending["retry_at"])
    if retry_at > now:  # not yet: the clock must still come back for it
        TriggerState.objects.filter(id=state_id, version=state["version"]).update(
            next_check_at=earliest(state["next_check_at"], retry_at))
        return 0
    firing = {key: value for key, value in pending.items() if key not in ("claim", "retry_at")}
    return int(hand_out(state_id, state["version"], firing, state["next_check_at"], now))


# --- continuous jobs: one active run ---------------------------------------------------------


def continuous_run_active(job_id):
    """Whether the continuous job has a run going (or one whose end is not yet counted), asked
    under the job's admission lock, which this takes: no two clocks or workers start its run at
    once. Call it in the transaction that may start the run."""
    Job.objects.filter(id=job_id).update(admission_seq=F("admission_seq") + 1)
    return Run.objects.filter(job_id=job_id, life_cycle_state__in=UNFINISHED_RUN_STATES).exists() or \
        _last_end_not_yet_counted(job_id)


def _last_end_not_yet_counted(job_id):
    """A run of the job ended and restart_continuous_job has not yet reacted (it is about to, or
    the sweep will): its failure may call for a backoff, so the next run waits for it."""
    return RunEvent.objects.filter(run__job_id=job_id, type="run.finished", reactions_pending=True).exists()


# --- on a worker: the evaluation and its answer ----------------------------------------------


def moment(text):
    return datetime.fromisoformat(text) if text else None


def evaluate_firing(state_id, claim, now=None):
    """Broker task: evaluate the sql_condition of the firing handed out with `claim`, then act on
    the answer. Does nothing once the claim is not the trigger's (a message delivered twice, the
    firing handed out again or replaced, the trigger paused, changed or removed)."""
    state = TriggerState.objects.filter(id=state_id, paused=False).select_related("job").first()
    pending = state.pending_fire if state is not None else None
    if not pending or pending.get("claim") != claim:
        return None
    try:
        result = evaluate_sql_condition(state.config["sql_condition"], state.condition_state, job=state.job,
                                        now=now or timezone.now())
    except Exception as exc:  # the evaluator itself broke: a failing condition like any other
        log.exception("sql_condition of trigger %s of job %s", state.position, state.job_id)
        result = ConditionResult(False, "", state=state.condition_state or {}, error=f"{type(exc).__name__}: {exc}")
    with transaction.atomic():
        return answer_firing(state, pending, result, now or timezone.now())


def answer_firing(state, pending, result, now):
    """Keep the evaluation's answer if the firing's claim is still the trigger's, and start the
    run if the condition was met, in the caller's transaction; the run, or None."""
    mine = TriggerState.objects.filter(id=state.id, paused=False, pending_fire__claim=pending["claim"])
    kept = {"condition_state": result.state or state.condition_state, "version": F("version") + 1}
    job, position, reason, slot = state.job, state.position, pending["reason"], moment(pending["slot"])
    if result.error:
        retry_at = now + ERROR_RETRY_EVERY
        again = {**pending, "claim": None, "retry_at": iso(retry_at)}
        if state.kind == Kind.CONTINUOUS:
            again = None  # its own step asks again in a few seconds, knowing whether a run is active
        next_check = mine.values_list("next_check_at", flat=True).first()
        if not mine.update(**kept, pending_fire=again, next_check_at=earliest(next_check, retry_at),
                           last_error=f"Its sql_condition failed: {result.error}; evaluated again from "
                                      f"{retry_at:%H:%M:%S} UTC"):
            return None
        decided(job, TriggerDecision.Kind.FAILED, f"{reason}; its sql_condition failed, no run: {result.error}",
                now, slot, position=position)
        return None
    if not mine.update(**kept, pending_fire=None, last_error=""):
        return None
    if not result.satisfied:
        decided(job, TriggerDecision.Kind.NOT_TRIGGERED, f"{reason}; its sql_condition was not met: {result.reason}",
                now, slot, position=position)
        return None
    if state.kind == Kind.CONTINUOUS and continuous_run_active(state.job_id):
        decided(job, TriggerDecision.Kind.SKIPPED, f"{reason}; its sql_condition was met, but a run of the job "
                                                   "started meanwhile", now, slot, position=position)
        return None
    run, _ = create_triggered_run(
        state, now, f"{reason}; its sql_condition was met: {result.reason}", slot, pending.get("by") or "the clock",
        trigger=pending["trigger"], trigger_time=moment(pending["trigger_time"]),
        trigger_details={**(pending.get("trigger_details") or {}), "sql_condition": result.details})
    return run
