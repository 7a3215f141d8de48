"""Keep a job's TriggerState in step with its settings, every time the job is saved.

A new or changed schedule starts from now (slots before the save never fire); pausing stops
the clock from acting on it; resuming starts again from now, so a paused schedule does not
fire what it missed. The clock (runs/triggers.py) does the rest.
"""

from django.utils import timezone

from jobs.models import Job, TriggerState

PAUSED = "PAUSED"


def trigger_block(settings):
    """(kind, the block without pause_status, paused) of a job's settings, or None."""
    if settings.get("continuous"):
        block = settings["continuous"]
        kind = TriggerState.Kind.CONTINUOUS
    elif settings.get("schedule"):
        block = settings["schedule"]
        kind = TriggerState.Kind.SCHEDULE
    elif settings.get("trigger"):
        block = settings["trigger"]
        found = [name for name in ("periodic", "file_arrival", "table_update", "table") if block.get(name)]
        if not found:
            return None
        kind = TriggerState.Kind.TABLE_UPDATE if found[0] == "table" else TriggerState.Kind(found[0])
    else:
        return None
    config = {key: value for key, value in block.items() if key != "pause_status"}
    return kind, config, block.get("pause_status") == PAUSED


def first_check(kind, config, now):
    """When the clock should first look at a trigger enabled at `now`."""
    if kind == TriggerState.Kind.SCHEDULE:
        from jobs.spec.cron import parse_quartz
        from runs.engine.schedule import next_slot

        return next_slot(parse_quartz(config["quartz_cron_expression"]), config.get("timezone_id") or "UTC", now)
    if kind == TriggerState.Kind.PERIODIC:
        from runs.engine.schedule import periodic_next

        periodic = config["periodic"]
        return periodic_next(periodic["interval"], periodic["unit"], now, now)
    return now


def sync_trigger_state(job, now=None):
    """Create, reset, pause, resume or remove the job's TriggerState to match its settings."""
    now = now or timezone.now()
    found = trigger_block(job.settings) if job.kind == Job.Kind.JOB and job.deleted_at is None else None
    state = TriggerState.objects.filter(job=job).first()
    if found is None:
        if state is not None:
            state.delete()
        return None
    kind, config, paused = found
    if state is None or state.kind != kind or state.config != config:
        if state is not None:
            state.delete()
        return TriggerState.objects.create(
            job=job, kind=kind, config=config, paused=paused, enabled_at=now,
            next_check_at=None if paused else first_check(kind, config, now),
        )
    if paused and not state.paused:
        state.paused, state.next_check_at = True, None
        state.save(update_fields=["paused", "next_check_at"])
    elif not paused and state.paused:
        # Resuming starts from now: what a paused schedule missed does not fire.
        state.paused, state.enabled_at = False, now
        state.next_check_at = first_check(kind, config, now)
        state.arrival = {}
        state.save(update_fields=["paused", "enabled_at", "next_check_at", "arrival"])
    return state
