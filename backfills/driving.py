"""Driving a backfill: start its slots' runs a few at a time, repair its failed ones, cancel it.

- drive_backfill starts runs while the backfill has free places (its max_concurrent_runs counts
  every unfinished run of it, queued or running; the job's own max_concurrent_runs and queue
  apply on top, as for any run). A repair that repair-failed asked for goes first, then the next
  slots in the backfill's order. When every slot has had its run and all of them ended, the
  backfill is FINISHED.
- It runs at creation, in reaction to each of its runs' `run.finished` (durable: at least once),
  and from the clock (a safety net for a crash between a run's end and its reaction). Each pass
  bumps Backfill.drive_seq first, which serializes the passes of one backfill across processes,
  and claims a slot (a BackfillRun, unique per backfill and slot) in the transaction that makes
  its run: a pass delivered twice finds the slot taken and the places full, and does nothing.
- A slot's run is an ordinary run: trigger BACKFILL, trigger_time the slot (so
  {{job.trigger.time.*}} is the slot, as for a scheduled run of it), trigger_details
  {"backfill": {"id", "start_time", "slot"}} ({{backfill.*}} is the slot too: the start of the
  window this run backfills, as in Lakeflow where each backfill run is one window; resolved in
  runs/resolution.py), the filled parameter and the extra job parameters. It always waits in
  the job's queue when the job is at its max_concurrent_runs (a backfill is a queue of its own:
  skipping a slot would lose it).
- A run that cannot be made (the job lost its tasks or the filled parameter since), or that ends
  as soon as it is made (skipped: the job's max_concurrent_runs became 0), stops the backfill:
  STOPPED, saying why; its other slots do not run (cancel it, or backfill them again with the
  MISSING policy). A deleted job cancels it.
- Cancel: the backfill is CANCELED first (no pass starts anything after that commits), then its
  queued runs are canceled, then its running ones (in that order: canceling a running run frees
  a job slot that would start a queued one).
- Repair failed: every finished, unsuccessful run of the backfill that runs/repair would take
  (rerun_all_failed_tasks with rerun_dependent_tasks) is asked for; the driver repairs them as
  places free, so the backfill's limit holds for repairs too. A FINISHED backfill runs again.
"""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backfills.models import Backfill, BackfillEvent, BackfillRun
from runs import dispatch, repair
from runs.admission import RunRefused, create_run
from runs.clock import clock_step
from runs.engine import backfill as rules
from runs.engine.parameters import ParametersInvalid
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L
from runs.isolation import each_isolated
from runs.models import Run
from runs.reactions import reacts_to

log = logging.getLogger(__name__)

S = Backfill.State
REPAIR_CHOICES = {"rerun_all_failed_tasks": True, "rerun_dependent_tasks": True}


def noted(backfill, event_type, at, reason, run=None):
    BackfillEvent.objects.create(backfill=backfill, type=event_type, at=at, reason=reason, run=run)


def slots_of(backfill):
    return [datetime.fromisoformat(slot) for slot in backfill.slots]


def is_unfinished(run):
    return run is not None and rules.outcome_of(run.life_cycle_state, run.result_state) == rules.UNFINISHED


def is_failed(run):
    return run is not None and rules.outcome_of(run.life_cycle_state, run.result_state) == rules.FAILED


def links_of(backfill):
    return list(BackfillRun.objects.filter(backfill=backfill).select_related("run").only(
        "id", "slot", "repair_asked", "run__id", "run__life_cycle_state", "run__result_state"))


def work_of(backfill, links):
    """(repairs to start, slots to start, nothing left at all) for a backfill in this state."""
    free = rules.free_places(backfill.max_concurrent_runs, sum(is_unfinished(link.run) for link in links))
    repairs = [link for link in links if link.repair_asked][:free]
    claimed = {link.slot for link in links}
    slots = rules.next_slots(slots_of(backfill), claimed, free - len(repairs))
    done = (len(claimed) >= len(backfill.slots) and not any(link.repair_asked for link in links)
            and not any(is_unfinished(link.run) for link in links))
    return repairs, slots, done


def drive_backfill(backfill_id, now=None):
    """Start what the backfill may start now; returns how many runs and repairs it started."""
    now = now or timezone.now()
    with transaction.atomic():
        Backfill.objects.filter(id=backfill_id).update(drive_seq=F("drive_seq") + 1)
        backfill = Backfill.objects.select_related("job", "creator").filter(id=backfill_id).first()
        if backfill is None or backfill.state != S.RUNNING:
            return 0
        if backfill.job.deleted_at is not None:
            stop(backfill, S.CANCELED, f"job {backfill.job_id} was deleted", now)
            return 0
        links = links_of(backfill)
        repairs, slots, done = work_of(backfill, links)
        started = 0
        for link in repairs:
            started += start_repair(backfill, link, now)
        for slot in slots:
            try:
                run = start_slot(backfill, slot, now)
            except (RunRefused, ParametersInvalid) as exc:
                stop(backfill, S.STOPPED, f"the run of slot {slot:%Y-%m-%d %H:%M:%S} UTC could not be made: {exc}", now)
                return started
            started += run is not None
            if run is not None and run.life_cycle_state in FINISHED_LIFE_CYCLES:
                # Skipped or broken at once: going on would end every slot the same way, each in
                # the reaction to the one before.
                stop(backfill, S.STOPPED, f"the run of slot {slot:%Y-%m-%d %H:%M:%S} UTC could not start: "
                                          f"{run.state_message or run.life_cycle_state}", now)
                return started
        if done:
            stop(backfill, S.FINISHED, f"every slot's run ended: {len(links)} run(s)", now)
        return started


def start_slot(backfill, slot, now):
    """Claim the slot and make its run, in one transaction (a savepoint inside the pass); the
    run, or None if the slot was taken."""
    parameters = rules.slot_parameters(slot, (backfill.parameter, backfill.parameter_form) if backfill.parameter
                                       else None, backfill.job_parameters, backfill.timezone_id)
    try:
        with transaction.atomic():
            link = BackfillRun.objects.create(backfill=backfill, slot=slot, claimed_at=now)
            run, _ = create_run(
                backfill.job, job_parameters=parameters or None, trigger=Run.Trigger.BACKFILL, creator=backfill.creator,
                queue_enabled=True, trigger_time=slot, now=now,
                trigger_details={"backfill": {"id": backfill.id, "start_time": backfill.start_time.isoformat(),
                                              "slot": slot.isoformat()}},
            )
            BackfillRun.objects.filter(id=link.id).update(run=run)
    except IntegrityError:  # the slot is taken: a pass delivered twice
        return None
    noted(backfill, "backfill.slot_started", now, f"slot {slot:%Y-%m-%d %H:%M:%S} UTC: run {run.id}", run)
    return run


def start_repair(backfill, link, now):
    """Repair the failed run repair-failed asked for; 1 if it started."""
    BackfillRun.objects.filter(id=link.id).update(repair_asked=False)
    run = link.run
    if not is_failed(run):  # repaired meanwhile by someone, or deleted
        return 0
    latest = run.repairs.order_by("-id").values_list("id", flat=True).first() if run else None
    try:
        with transaction.atomic():
            repair.repair_run(run.id, user=backfill.creator, now=now, latest_repair_id=latest, **REPAIR_CHOICES)
    except repair.RepairRefused as exc:
        noted(backfill, "backfill.repair_refused", now, f"run {run.id} could not be repaired: {exc}", run)
        return 0
    noted(backfill, "backfill.repair_started", now, f"run {run.id} (slot {link.slot:%Y-%m-%d %H:%M:%S} UTC) "
                                                    "is repaired", run)
    return 1


def stop(backfill, state, reason, now):
    if Backfill.objects.filter(id=backfill.id, state=S.RUNNING).update(state=state, state_message=reason, ended_at=now):
        backfill.state, backfill.state_message, backfill.ended_at = state, reason, now
        noted(backfill, f"backfill.{state.lower()}", now, reason)


# --- what drives it ---------------------------------------------------------------------------


def is_backfill_run(event):
    return event.run.trigger == Run.Trigger.BACKFILL


@reacts_to("run.finished", when=is_backfill_run, alone=True)  # locks the backfill, then its job
def drive_after_a_run(event):
    """One of its runs ended: a place is free for the next slot (or the backfill is finished)."""
    backfill_id = ((event.run.trigger_details or {}).get("backfill") or {}).get("id")
    if isinstance(backfill_id, int):
        drive_backfill(backfill_id)


def needs_a_pass(backfill):
    repairs, slots, done = work_of(backfill, links_of(backfill))
    return bool(repairs or slots or done or backfill.job.deleted_at)


@clock_step
def drive_running_backfills(now):
    """Safety net: a backfill whose run ended without its reaction (a crash between) goes on.
    A read first, so that a backfill with nothing to do costs no write."""
    running = [b for b in Backfill.objects.filter(state=S.RUNNING).select_related("job") if needs_a_pass(b)]
    return each_isolated([b.id for b in running], lambda backfill_id: drive_backfill(backfill_id, now),
                         lambda backfill_id, why: log.warning("backfill %s could not go on: %s", backfill_id, why))


# --- what users do --------------------------------------------------------------------------


class BackfillRefused(ValueError):
    """Cancel or repair-failed cannot be done in the backfill's state (an API 400 INVALID_STATE)."""

    error_code = "INVALID_STATE"


def cancel_backfill(backfill, user=None, now=None):
    """Cancel the backfill and its unfinished runs; returns the ids of the runs it canceled."""
    now = now or timezone.now()
    who = f" by {user.get_username()}" if user is not None else ""
    with transaction.atomic():
        if not Backfill.objects.filter(id=backfill.id, state__in=[S.RUNNING, S.STOPPED]).update(
                state=S.CANCELED, ended_at=now, state_message=f"canceled{who}"):
            backfill.refresh_from_db()
            raise BackfillRefused(f"backfill {backfill.id} is {backfill.state}: there is nothing to cancel")
        BackfillRun.objects.filter(backfill=backfill, repair_asked=True).update(repair_asked=False)
        noted(backfill, "backfill.canceled", now, f"canceled{who}")
    # After the commit: no pass of the driver starts a run from here on.
    runs = Run.objects.filter(id__in=BackfillRun.objects.filter(backfill=backfill).values("run_id")).exclude(
        life_cycle_state__in=FINISHED_LIFE_CYCLES).values_list("id", "life_cycle_state")
    canceled = []
    for run_id, _ in sorted(runs, key=lambda row: (row[1] != L.QUEUED, row[0])):
        if dispatch.cancel_run(run_id, message=f"Canceled with backfill {backfill.id}{who}"):
            canceled.append(run_id)
    backfill.refresh_from_db()
    return canceled


def ask_repairs(backfill, user=None, now=None):
    """Ask for a repair of every failed run of the backfill; returns (run ids asked for,
    [(run id, why it cannot be repaired)]). The driver starts them as places free."""
    now = now or timezone.now()
    if backfill.state == S.CANCELED:
        raise BackfillRefused(f"backfill {backfill.id} was canceled: its runs are not repaired")
    asked, refused = [], []
    for link in links_of(backfill):
        if not is_failed(link.run) or link.repair_asked:
            continue
        latest = link.run.repairs.order_by("-id").values_list("id", flat=True).first()
        try:
            repair.preview_repair(link.run.id, latest_repair_id=latest, **REPAIR_CHOICES)
        except repair.RepairRefused as exc:
            refused.append((link.run.id, str(exc)))
            continue
        asked.append(link)
    if not asked:
        why = "; ".join(f"run {run_id}: {message}" for run_id, message in refused)
        raise BackfillRefused(f"backfill {backfill.id} has no failed run to repair" + (f" ({why})" if why else ""))
    who = f" by {user.get_username()}" if user is not None else ""
    with transaction.atomic():
        # The backfill's row first, as cancel_backfill and the driver take it: a cancel that
        # committed since the check above wins, instead of leaving repairs asked that never start.
        Backfill.objects.filter(id=backfill.id).update(drive_seq=F("drive_seq") + 1)
        if Backfill.objects.filter(id=backfill.id, state=S.CANCELED).exists():
            raise BackfillRefused(f"backfill {backfill.id} was canceled: its runs are not repaired")
        BackfillRun.objects.filter(id__in=[link.id for link in asked]).update(repair_asked=True)
        Backfill.objects.filter(id=backfill.id, state__in=[S.FINISHED, S.STOPPED]).update(
            state=S.RUNNING, ended_at=None, state_message="")
        noted(backfill, "backfill.repair_asked", now, f"repair of {len(asked)} failed run(s) asked{who}")
    drive_backfill(backfill.id, now)
    backfill.refresh_from_db()
    return [link.run.id for link in asked], refused
