"""The clock's trigger steps: schedules, periodic triggers, file arrival, table updates and
continuous jobs start runs by themselves (reference §1.4–1.6); job-completion triggers react to
run events instead (runs/job_completion.py).

A job has one TriggerState per trigger: its schedule, trigger or continuous setting (position
0), or each entry of its triggers list (position i); each fires on its own. Each step reads the
rows that are due (an index on paused, next_check_at), decides with the pure rules in
runs/engine (schedule slots, arrival timers) and starts runs through create_run. A schedule slot
makes at most one run: Run has a unique constraint on (job, trigger_slot), so a second clock
firing the same slot (a lease handover, a restart) gets the existing run back; two triggers of
one job firing for the same instant make one run too. Slots missed for less than
LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS (a lease moving after a node died, a restart) fire late,
oldest first, several lots per pass; after a longer downtime only the latest missed slot fires, as in Lakeflow.

A schedule storm (hundreds of jobs due in the same second) fires in lots of BATCH_SIZE
triggers, one transaction each (fire_schedules): the jobs' admission locks taken together in id
order (on Postgres skipping those another transaction holds: another clock's lot, a worker
admitting a run; those fire one by one), one compare-and-swap per trigger, one insert each for
the lot's runs, their events, first attempts and decisions; the first attempts reach the broker
when the lot commits. A lot that fails (a slot whose run another clock made: the unique
constraint) leaves nothing behind and fires one by one instead. So several clocks may run the
step at once without firing a slot twice.

A trigger with a sql_condition starts its run only if the condition, evaluated after the
trigger's own rule, is met. The firing waits in pending_fire and a worker evaluates it
(runs/firings.py), never the clock's step: not met is a "not triggered" decision;
a condition that fails is a "failed" decision and the trigger's error, and the firing is
evaluated again ERROR_RETRY_EVERY later (a newer firing of the trigger replaces it). Never a run
without the condition's answer.
"""

import logging
import os
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import Job
from jobs.spec.cron import parse_quartz
from jobs.spec.triggers import trigger_blocks
from runs.engine.schedule import decide_slot, missed_cron_slots, missed_periodic_slots, next_slot, periodic_next
from runs.engine.states import RunResultState as R
from runs.events import gathered
from runs.firings import (
    ERROR_RETRY_EVERY,
    continuous_run_active,
    decided,
    fire_slots_together,
    retry_pending_firing,
    start_triggered_run,
)
from runs.isolation import each_isolated
from runs.models import Run, TableWrite, TriggerDecision, TriggerState
from runs.reactions import reacts_to
from runs.watch import BackgroundScans, InlineScans

log = logging.getLogger(__name__)

Kind = TriggerState.Kind
FILE_CHECK_EVERY = timedelta(seconds=2)
TABLE_CHECK_EVERY = timedelta(seconds=1)
CONTINUOUS_CHECK_EVERY = timedelta(seconds=5)  # a safety net: a run's end re-checks at once


def run_due_triggers(now):
    """The clock step: one indexed query for every trigger that is due, then each kind's rule.
    A trigger whose check raises shows why in its last_error and is looked at again later; the
    others go on."""
    states = TriggerState.objects.filter(paused=False, next_check_at__lte=now).select_related("job", "job__creator")
    order = list(HANDLERS)
    states = sorted(states, key=lambda state: (order.index(state.kind), state.id))

    def cannot_check(state, why):
        TriggerState.objects.filter(id=state.id).update(
            last_error=f"The clock could not check this trigger: {why}", checked_at=now,
            next_check_at=now + ERROR_RETRY_EVERY)

    together = [state for state in states if state.kind in (Kind.SCHEDULE, Kind.PERIODIC)
                and not state.config.get("sql_condition")]
    batched = {state.id for state in together}
    alone = [state for state in states if state.id not in batched]
    started, budget = 0, time.monotonic() + CATCH_UP_SECONDS
    for _ in range(CATCH_UP_ROUNDS):
        catching_up = []
        for at in range(0, len(together), BATCH_SIZE):
            fired, left = fire_schedules(together[at:at + BATCH_SIZE], now, catching_up)
            started += fired
            alone += left
        if not catching_up or time.monotonic() >= budget:
            break
        # Triggers catching up (their next check is a slot that has come) fire their next slot now,
        # not a pass later: a killed clock's minute of slots is made up in seconds.
        together = list(TriggerState.objects.filter(id__in=catching_up, paused=False, next_check_at__lte=now)
                        .select_related("job", "job__creator").order_by("id"))
    return started + each_isolated(alone, lambda state: check_trigger(state, now), cannot_check)


BATCH_SIZE = 50  # schedule triggers fired per transaction
CATCH_UP_ROUNDS = 10  # lots of catching-up slots fired per clock pass, within CATCH_UP_SECONDS
CATCH_UP_SECONDS = 1.0


def fire_schedules(states, now, catching_up=None):
    """Fire the due slots of many schedule and periodic triggers in one transaction (a schedule
    storm: hundreds of jobs due in the same second start within it); returns (runs started,
    states the caller fires one by one: fire_schedule). If the transaction fails (a slot that
    already has its run, a job the engine cannot start, a lost connection) it leaves nothing
    behind, and every state of the lot is fired one by one, each on its own. The ids of the
    triggers that fired a slot to catch up (more have come) are added to catching_up."""
    plans, left = [], []
    for state in states:
        try:
            plans.append((state, schedule_decision(state, now)))
        except Exception:  # a broken trigger: its own step records why
            left.append(state)
    try:
        with transaction.atomic(), gathered():  # the lot's task and run-end events in one INSERT
            fired, rest = fire_slots_together(plans, now, advance)
    except Exception:
        log.warning("%d schedule slots could not fire together: firing them one by one", len(plans), exc_info=True)
        return 0, states
    if catching_up is not None:
        one_by_one = {state.id for state in rest}
        catching_up += [state.id for state, decision in plans if decision.fire is not None and state.id not in one_by_one
                        and decision.next_check is not None and decision.next_check <= now]
    return fired, left + rest


def check_trigger(state, now):
    """The trigger's own rule, then a firing its sql_condition could not evaluate before."""
    started = HANDLERS[state.kind](state, now)
    if state.config.get("sql_condition"):
        started += retry_pending_firing(state.id, now)
    return started


def handles(kind):
    """Register the decorated function as the clock's step for triggers of `kind` (for kinds
    whose module builds on this one: runs/job_completion.py)."""
    def register(step):
        HANDLERS[kind] = step
        return step

    return register


def advance(state, old_check_at, **fields):
    """Save the state if no other clock moved it since we read it (compare-and-swap). The last
    fired slot is compared too: a trigger catching up keeps its next check (a slot that has come)
    while its last slot moves on."""
    return bool(TriggerState.objects.filter(id=state.id, next_check_at=old_check_at,
                                            last_slot=state.last_slot).update(**fields))


# --- the trigger's state, kept in step with the job's settings ------------------------------


def first_check(kind, config, now):
    """When the clock should first look at a trigger enabled at `now`."""
    if kind == Kind.SCHEDULE:
        from jobs.spec.cron import parse_quartz
        from runs.engine.schedule import next_slot

        return next_slot(parse_quartz(config["quartz_cron_expression"]), config.get("timezone_id") or "UTC", now)
    if kind == Kind.PERIODIC:
        from runs.engine.schedule import periodic_next

        periodic = config["periodic"]
        return periodic_next(periodic["interval"], periodic["unit"], now, now)
    if kind == Kind.JOB_COMPLETION:
        return None  # run events move it, not the clock
    return now


def sync_trigger_state(job, now=None):
    """Create, reset, pause, resume or remove the job's TriggerStates to match its settings, one
    per trigger; returns them in position order.

    A new or changed trigger starts from now (schedule slots before the save never fire, upstream
    completions before it do not count); pausing stops it from acting; resuming starts again from
    now, so a paused trigger does not fire what it missed."""
    now = now or timezone.now()
    live = job.kind == Job.Kind.JOB and job.deleted_at is None
    blocks = {position: (kind, config, paused)
              for position, kind, config, paused in (trigger_blocks(job.settings) if live else [])}
    states = {state.position: state for state in TriggerState.objects.filter(job=job)}
    TriggerState.objects.filter(id__in=[s.id for p, s in states.items() if p not in blocks]).delete()
    return [sync_one(job, position, *blocks[position], states.get(position), now) for position in sorted(blocks)]


def sync_one(job, position, kind, config, paused, state, now):
    if state is None or state.kind != kind or state.config != config:
        if state is not None:
            state.delete()
        return TriggerState.objects.create(
            job=job, position=position, kind=kind, config=config, paused=paused, enabled_at=now,
            next_check_at=None if paused else first_check(kind, config, now),
        )
    if paused and not state.paused:
        # The version moves too: a worker's answer for a firing from before the pause is void.
        TriggerState.objects.filter(id=state.id).update(paused=True, next_check_at=None, pending_fire=None,
                                                        version=F("version") + 1)
        state.refresh_from_db()
        decided(job, TriggerDecision.Kind.PAUSED, "paused: nothing fires until it is resumed", now, position=position)
    elif not paused and state.paused:
        decided(job, TriggerDecision.Kind.RESUMED, "resumed: it starts from now, and what came while it was "
                                                   "paused does not fire", now, position=position)
        # Resuming starts from now: what a paused schedule missed does not fire, and upstream
        # completions seen before the pause wait for new ones.
        from runs.engine.job_completion import CompletionState, fired

        state.paused, state.enabled_at = False, now
        state.next_check_at = first_check(kind, config, now)
        state.arrival = {}
        state.completions = fired(CompletionState.from_dict(state.completions)).as_dict()
        state.save(update_fields=["paused", "enabled_at", "next_check_at", "arrival", "completions"])
    return state


def job_settings_saved(sender, job, version, **kwargs):
    """jobs.models.settings_saved: a job's new settings take effect on its trigger at once."""
    sync_trigger_state(job)


# Where file-arrival triggers' directory scans run: on the clock's threads, or inline (tests).
scans = BackgroundScans() if settings.LAKEFLOW_SCAN_IN_BACKGROUND else InlineScans()


# --- schedule and periodic -------------------------------------------------------------------


def slot_due(state, now):
    """(the latest slot at or before now, the first slot after now) for a schedule or periodic trigger."""
    config = state.config
    if state.kind == Kind.SCHEDULE:
        from jobs.spec.cron import parse_quartz
        from runs.engine.schedule import latest_slot, next_slot

        cron = parse_quartz(config["quartz_cron_expression"])
        zone = config.get("timezone_id") or "UTC"
        return latest_slot(cron, zone, now), next_slot(cron, zone, now)
    from runs.engine.schedule import periodic_latest, periodic_next

    periodic = config["periodic"]
    return (periodic_latest(periodic["interval"], periodic["unit"], state.enabled_at, now),
            periodic_next(periodic["interval"], periodic["unit"], state.enabled_at, now))


def schedule_decision(state, now):
    """What a schedule or periodic trigger does at now (engine SlotDecision): fire the latest slot
    that came, or, if every slot that did not fire came within LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS,
    the oldest of them (fire), and look again at next_check."""
    latest, following = slot_due(state, now)
    since = unfired_since(state)
    oldest = slot_after(state, since) if latest is not None and latest > since else None
    if oldest is None or oldest >= latest:  # nothing missed: the usual case, one slot computed
        return decide_slot(latest=latest, following=following, last_fired=state.last_slot,
                           enabled_at=state.enabled_at)
    # Away for less than the window (a lease moving, a restart): every missed slot fires, in order.
    # Longer: only the latest, as in Lakeflow. A sql_condition trigger evaluates one firing at a
    # time and skips the slots that come meanwhile: it would skip the latest, so it takes only that.
    recent = (oldest > now - timedelta(seconds=settings.LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS)
              and not state.config.get("sql_condition"))
    catch_up = oldest if recent else None
    return decide_slot(latest=latest, following=following, last_fired=state.last_slot, enabled_at=state.enabled_at,
                       missed=0 if recent else missed_slots(state, latest), catch_up=catch_up)


def unfired_since(state):
    """The moment no slot after which has fired: the last slot fired, or the trigger's enabling."""
    return max(filter(None, [state.last_slot, state.enabled_at]))


def slot_after(state, moment):
    """The first slot of a schedule or periodic trigger strictly after moment."""
    config = state.config
    if state.kind == Kind.SCHEDULE:
        return next_slot(parse_quartz(config["quartz_cron_expression"]), config.get("timezone_id") or "UTC", moment)
    periodic = config["periodic"]
    return periodic_next(periodic["interval"], periodic["unit"], state.enabled_at, moment)


def fire_schedule(state, now):
    """Start the run of the schedule slot that has come; only the latest if several were missed."""
    decision = schedule_decision(state, now)
    if decision.fire is None:
        advance(state, state.next_check_at, next_check_at=decision.next_check)
        return 0
    if not advance(state, state.next_check_at, next_check_at=decision.next_check, last_slot=decision.fire,
                   last_fired_at=now, last_error=""):
        return 0  # another clock took this slot's step
    if decision.missed:
        decided(state.job, TriggerDecision.Kind.SKIPPED, decision.reason, now, decision.fire, position=state.position)
    run, created = start_triggered_run(state, now, decision.reason, decision.fire, trigger=Run.Trigger.PERIODIC,
                                       trigger_time=decision.fire)
    return int(run is not None and created)


def missed_slots(state, latest):
    """How many slots came, before `latest`, since the last one fired (or the trigger was enabled)."""
    since = unfired_since(state)
    if latest is None or latest <= since:
        return 0
    if state.kind == Kind.SCHEDULE:
        config = state.config
        return missed_cron_slots(parse_quartz(config["quartz_cron_expression"]), config.get("timezone_id") or "UTC",
                                 since, latest)
    periodic = state.config["periodic"]
    return missed_periodic_slots(periodic["interval"], periodic["unit"], since, latest)


# --- file arrival ------------------------------------------------------------------------------


def check_file_arrival(state, now):
    """Compare the watched tree with what the trigger has seen; the scan itself runs off the
    step (runs/watch.py BackgroundScans), so this returns at once until its listing is there."""
    from runs.engine.arrival import ArrivalState, fired, observe, should_fire
    from runs.watch import WatchError, fingerprints, local_path, new_files

    config = state.config["file_arrival"]
    try:
        path = local_path(config["url"], settings.LAKEFLOW_FS_ROOTS)
        if not os.path.exists(path) and settings.LAKEFLOW_FS_ROOTS.mapped(config["url"]) is not None:
            listing = {}  # a volume's directory that nothing wrote yet: empty, not an error
        else:
            listing = scans.listing((state.job_id, state.position, config["url"]), path,
                                    settings.LAKEFLOW_FILE_ARRIVAL_MAX_FILES)
    except WatchError as exc:
        # Shown on the job's trigger state; other triggers go on.
        advance(state, state.next_check_at, last_error=str(exc), checked_at=now,
                next_check_at=now + ERROR_RETRY_EVERY)
        return 0
    if listing is None:
        return 0  # still scanning: the trigger stays due, and the next step looks again
    arrival = ArrivalState.from_dict(state.arrival or {})
    arrived = new_files(state.snapshot, listing) if state.snapshot is not None else []
    arrival = observe(arrival, changed=bool(arrived), now=now)
    fields = dict(last_error="", checked_at=now, next_check_at=now + FILE_CHECK_EVERY)
    seen = fingerprints(listing)
    if seen != state.snapshot:  # rewritten only when files came or went
        fields["snapshot"] = seen
    fire = should_fire(arrival, now=now, min_between_seconds=config.get("min_time_between_triggers_seconds") or 0,
                       wait_after_seconds=config.get("wait_after_last_change_seconds") or 0)
    if fire:
        arrival = fired(arrival, now)
        fields["last_fired_at"] = now
    if not advance(state, state.next_check_at, arrival=arrival.as_dict(), **fields) or not fire:
        return 0
    run, created = start_triggered_run(state, now, f"{len(arrived)} new file(s) in {config['url']}"
                                       if arrived else f"files arrived in {config['url']}",
                                       trigger=Run.Trigger.FILE_ARRIVAL, trigger_time=now,
                                       trigger_details={"file_arrival": {"location": config["url"]}})
    return int(run is not None and created)


# --- table updates -----------------------------------------------------------------------------


def is_path(name):
    return name.startswith(("/", "file:", "dbfs:"))


def table_updates_since(state, names, now):
    """{table: {version, commit_timestamp}} of the watched tables updated since the last look,
    and the new seen_write_id and Delta snapshot."""
    from runs.watch import WatchError, delta_table_version, local_path

    updated = {}
    catalog_names = [n.lower() for n in names if not is_path(n)]
    last_id = state.seen_write_id
    for write in TableWrite.objects.filter(id__gt=state.seen_write_id, table_name__in=catalog_names).order_by("id"):
        updated[write.table_name] = {"version": write.id, "commit_timestamp": write.at.isoformat()}
    newest = TableWrite.objects.order_by("-id").values_list("id", flat=True).first() or 0
    last_id = max(last_id, newest)
    seen = dict(state.snapshot or {})
    for name in filter(is_path, names):
        try:
            found = delta_table_version(local_path(name, settings.LAKEFLOW_FS_ROOTS))
        except WatchError:
            found = None
        if found is None:
            continue
        version, committed = found
        if name in seen and seen[name] != version:
            updated[name] = {"version": version, "commit_timestamp": committed.isoformat()}
        seen[name] = version
    return updated, last_id, seen


def check_table_update(state, now):
    from runs.engine.arrival import ArrivalState, fired, observe, should_fire, tables_ready

    config = state.config.get("table_update") or state.config.get("table") or {}
    names = list(config.get("table_names") or [])
    updated, last_id, seen = table_updates_since(state, names, now)
    pending = {**(state.updated_tables or {}), **updated}
    arrival = observe(ArrivalState.from_dict(state.arrival or {}), changed=bool(updated), now=now)
    fire = tables_ready(config.get("condition") or "ANY_UPDATED", names, set(pending)) and should_fire(
        arrival, now=now, min_between_seconds=config.get("min_time_between_triggers_seconds") or 0,
        wait_after_seconds=config.get("wait_after_last_change_seconds") or 0)
    fields = dict(seen_write_id=last_id, snapshot=seen, checked_at=now, next_check_at=now + TABLE_CHECK_EVERY,
                  updated_tables={} if fire else pending)
    if fire:
        arrival = fired(arrival, now)
        fields.update(last_fired_at=now, last_error="")
    if not advance(state, state.next_check_at, arrival=arrival.as_dict(), **fields) or not fire:
        return 0
    details = {"table_update": {"updated_tables": sorted(pending), "tables": pending}}
    run, created = start_triggered_run(state, now, f"tables updated: {', '.join(sorted(pending))}",
                                       trigger=Run.Trigger.TABLE, trigger_time=now, trigger_details=details)
    return int(run is not None and created)


def record_table_writes(attempt, tables, now):
    """Called by the worker when a SQL task wrote tables; table triggers see them on their next look."""
    TableWrite.objects.bulk_create([TableWrite(table_name=name.lower(), task_run=attempt, at=now) for name in tables])
    TriggerState.objects.filter(kind=Kind.TABLE_UPDATE, paused=False).update(next_check_at=now)


# --- continuous ------------------------------------------------------------------------------


def continuous_backoff(failures):
    """How long a continuous job waits before its next run after `failures` failed runs in a row."""
    if failures == 0:
        return timedelta(0)
    base = settings.LAKEFLOW_CONTINUOUS_BACKOFF_SECONDS
    doublings = min(failures - 1, 60)  # past the cap long before; 2.0 ** 1024 would not fit a float
    return timedelta(seconds=min(base * 2 ** doublings, settings.LAKEFLOW_CONTINUOUS_BACKOFF_MAX_SECONDS))


def keep_continuous_job_running(state, now):
    """Exactly one active run per unpaused continuous job: start one when none is active."""
    with transaction.atomic():
        if continuous_run_active(state.job_id):
            advance(state, state.next_check_at, next_check_at=now + CONTINUOUS_CHECK_EVERY)
            return 0
        if not advance(state, state.next_check_at, next_check_at=now + CONTINUOUS_CHECK_EVERY,
                       last_fired_at=now, last_error=""):
            return 0
        # CONTINUOUS_RESTART is for a user's manual restart (the SDK's TriggerType), not a backoff.
        run, created = start_triggered_run(state, now, "continuous: no run was active",
                                           trigger=Run.Trigger.CONTINUOUS, trigger_time=now)
        return int(run is not None and created)


@reacts_to("run.finished", when=lambda event: event.run.trigger in (Run.Trigger.CONTINUOUS,
                                                                     Run.Trigger.CONTINUOUS_RESTART))
def restart_continuous_job(event):
    """A run of a continuous job ended: the clock looks at the job again now (or after a backoff)."""
    run = Run.objects.filter(id=event.run_id).only("id", "job_id", "trigger", "result_state").first()
    if run is not None and run.trigger in (Run.Trigger.CONTINUOUS, Run.Trigger.CONTINUOUS_RESTART):
        continuous_run_ended(run, event.data.get("result_state") or run.result_state, event.at)


def continuous_run_ended(run, result_state, now=None):
    """A run of a continuous job ended: the next starts at once, or after a backoff if it failed."""
    state = TriggerState.objects.filter(job_id=run.job_id, kind=Kind.CONTINUOUS).first()
    if state is None:
        return
    now = now or timezone.now()
    failed = result_state not in (R.SUCCESS, R.SUCCESS_WITH_FAILURES, R.CANCELED)
    failures = state.failures + 1 if failed else 0
    next_check = None if state.paused else now + continuous_backoff(failures)
    TriggerState.objects.filter(id=state.id).update(failures=failures, next_check_at=next_check)


HANDLERS = {  # in the order the clock looks at them
    Kind.SCHEDULE: fire_schedule,
    Kind.PERIODIC: fire_schedule,
    Kind.CONTINUOUS: keep_continuous_job_running,
    Kind.TABLE_UPDATE: check_table_update,
    Kind.FILE_ARRIVAL: check_file_arrival,
}
