"""What a backfill request means for a job: its slots, the runs it would make, and its creation.

The API (api/backfills.py) and the form (backfills/pages.py) read their input into a
BackfillRequest and call plan_backfill; the dry run and the Preview show its plan, and
create_backfill saves that same plan and starts the first runs.

Decisions (the arithmetic and the policies are runs/engine/backfill.py's docstring):
- Slots come from `interval` when it is given, else from the job's schedule (the first one, if
  its `triggers` have several), else from a periodic trigger in hours, days or weeks (anchored
  at start_time); a job with none of them needs `interval`.
  `timezone_id` goes with an interval (default UTC); a schedule has its own.
- The range is refused when end_time is not after start_time, when it ends in the future
  (slots that have not come yet are the schedule's business), when it is longer than
  LAKEFLOW_BACKFILL_MAX_DAYS, or when it holds more than LAKEFLOW_BACKFILL_MAX_RUNS slots; a range
  whose policy leaves no slot to run is refused too (nothing would happen).
- The filled parameter: `parameter` if named (the job must have it, and job_parameters must not
  set it too), else the first job parameter whose default looks like a date that job_parameters
  does not set; none at all is fine (the runs still have their trigger time and {{backfill.*}}).
- max_concurrent_runs defaults to the job's own max_concurrent_runs (so by default the backfill
  adds no limit of its own), from 1 to 1000. reprocess_policy defaults to ALL (as Lakeflow's
  backfill runs every window), order to OLDEST_FIRST.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backfills.driving import drive_backfill, noted
from backfills.models import Backfill
from jobs.spec.cron import CronInvalid, parse_quartz
from jobs.spec.triggers import trigger_blocks
from runs.admission import max_concurrent_runs as job_limit
from runs.engine import backfill as rules
from runs.engine.parameters import ParametersInvalid, effective_job_parameters
from runs.models import Run

MAX_CONCURRENT_RUNS = 1000
MAX_INTERVAL = 10_000


class BackfillInvalid(ValueError):
    """Bad input: `field` names what to fix (an API 400, a form field's error)."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass
class BackfillRequest:
    start_time: datetime
    end_time: datetime
    interval: dict | None = None  # {"interval": n, "unit": HOURS | DAYS | WEEKS}
    timezone_id: str | None = None
    parameter: str | None = None
    reprocess_policy: str = rules.ReprocessPolicy.ALL
    order: str = rules.Order.OLDEST_FIRST
    max_concurrent_runs: int | None = None
    job_parameters: dict = field(default_factory=dict)


@dataclass
class BackfillPlan:
    cadence: dict
    timezone_id: str
    fill: tuple | None  # (parameter name, "date" | "datetime")
    slots: list  # in the order their runs start
    reprocess_policy: str
    order: str
    max_concurrent_runs: int
    job_parameters: dict

    def runs(self):
        """[(slot, the job parameters its run overrides)], in order: what a dry run answers."""
        return [(slot, rules.slot_parameters(slot, self.fill, self.job_parameters, self.timezone_id))
                for slot in self.slots]


def plan_backfill(job, request, now=None):
    """The plan of `request` for `job`; raises BackfillInvalid naming the field to fix."""
    now = now or timezone.now()
    settings_ = job.settings
    start, end = request.start_time, request.end_time
    if end <= start:
        raise BackfillInvalid("end_time", f"must be after start_time ({start:%Y-%m-%d %H:%M:%S} UTC): "
                                          "the range is [start_time, end_time)")
    if end > now:
        raise BackfillInvalid("end_time", f"{end:%Y-%m-%d %H:%M:%S} UTC is in the future: a backfill runs past "
                                          "slots only (those to come are the schedule's)")
    max_days = settings.LAKEFLOW_BACKFILL_MAX_DAYS
    if end - start > timedelta(days=max_days):
        raise BackfillInvalid("end_time", f"the range is {(end - start) / timedelta(days=1):.1f} days long, longer "
                                          f"than the {max_days} days a backfill may cover (LAKEFLOW_BACKFILL_MAX_DAYS)")
    policy = choice("reprocess_policy", request.reprocess_policy, rules.ReprocessPolicy)
    order = choice("order", request.order, rules.Order)
    limit = request.max_concurrent_runs
    if limit is None:
        limit = min(max(job_limit(job), 1), MAX_CONCURRENT_RUNS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CONCURRENT_RUNS:
        raise BackfillInvalid("max_concurrent_runs", f"must be a whole number from 1 to {MAX_CONCURRENT_RUNS}, "
                                                     f"not {limit!r}")
    if not settings_.get("tasks"):
        raise BackfillInvalid("job_id", f"job {job.id} has no tasks to run")
    if job_limit(job) < 1:
        raise BackfillInvalid("job_id", f"job {job.id} has max_concurrent_runs 0: every run of it would be skipped")
    cadence, zone = cadence_of(job, request)
    slots = slots_of(cadence, zone, start, end)
    extra = request.job_parameters or {}
    definitions = settings_.get("parameters") or []
    try:
        effective_job_parameters(definitions, extra)
    except ParametersInvalid as exc:
        raise BackfillInvalid("job_parameters", str(exc).removeprefix("job_parameters: ")) from None
    try:
        fill = rules.parameter_to_fill(definitions, request.parameter, set(extra))
    except KeyError:
        names = ", ".join(d["name"] for d in definitions) or "no parameters"
        raise BackfillInvalid("parameter", f"job {job.id} has no parameter {request.parameter!r}; it has {names}") from None
    if request.parameter and request.parameter in extra:
        raise BackfillInvalid("job_parameters", f"{request.parameter!r} is the parameter the backfill fills with "
                                                "each slot: leave it out of job_parameters")
    chosen = rules.select_slots(slots, existing_runs(job, start, end), policy)
    if not chosen:
        raise BackfillInvalid("reprocess_policy", f"none of the range's {len(slots)} slot(s) needs a run under "
                                                  f"{policy.value}: nothing to backfill")
    return BackfillPlan(cadence=cadence, timezone_id=zone, fill=fill, slots=rules.in_order(chosen, order),
                        reprocess_policy=policy.value, order=order.value, max_concurrent_runs=limit,
                        job_parameters=dict(extra))


def choice(name, value, enum):
    try:
        return enum(value)
    except ValueError:
        raise BackfillInvalid(name, f"must be one of {', '.join(e.value for e in enum)}, not {value!r}") from None


def cadence_of(job, request):
    """({"interval": ..., "timezone_id"} or {"schedule": ...}, the time zone) of the slots."""
    if request.interval is not None:
        interval = request.interval
        unit, count = interval.get("unit"), interval.get("interval")
        if unit not in rules.INTERVAL_UNITS:
            raise BackfillInvalid("interval.unit", f"must be one of {', '.join(rules.INTERVAL_UNITS)}, not {unit!r}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_INTERVAL:
            raise BackfillInvalid("interval.interval", f"must be a whole number from 1 to {MAX_INTERVAL}, not {count!r}")
        zone = request.timezone_id or "UTC"
        try:
            ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            raise BackfillInvalid("timezone_id", f"unknown time zone {zone!r}; use an IANA name such as "
                                                 "Europe/Berlin") from None
        return {"interval": {"interval": count, "unit": unit}, "timezone_id": zone}, zone
    if request.timezone_id:
        raise BackfillInvalid("timezone_id", "goes with interval: without one the slots are the job's schedule's, "
                                             "in its own time zone")
    schedule = timed_trigger(job.settings, "schedule")
    if schedule is not None:
        zone = schedule.get("timezone_id") or "UTC"
        return {"schedule": {"quartz_cron_expression": schedule["quartz_cron_expression"], "timezone_id": zone}}, zone
    periodic = (timed_trigger(job.settings, "periodic") or {}).get("periodic") or {}
    if periodic.get("unit") in rules.INTERVAL_UNITS:
        return {"interval": {"interval": periodic["interval"], "unit": periodic["unit"]}, "timezone_id": "UTC"}, "UTC"
    raise BackfillInvalid("interval", f"job {job.id} has no schedule: give the interval its slots are apart, "
                                      'e.g. {"interval": 1, "unit": "DAYS"}')


def timed_trigger(settings_, kind):
    """The config of the job's first schedule (or periodic trigger), paused or not: its
    `schedule`, or one of its `triggers`."""
    return next((config for _, found, config, _ in trigger_blocks(settings_) if found == kind), None)


def slots_of(cadence, zone, start, end):
    limit = settings.LAKEFLOW_BACKFILL_MAX_RUNS
    if "schedule" in cadence:
        try:
            cron = parse_quartz(cadence["schedule"]["quartz_cron_expression"])
        except CronInvalid as exc:  # a schedule saved before today's checks
            raise BackfillInvalid("job_id", f"the job's schedule cannot be read: {exc}") from None
        slots = rules.schedule_slots(cron, zone, start, end, limit)
        source = "of the job's schedule"
    else:
        interval = cadence["interval"]
        slots = rules.interval_slots(interval["interval"], interval["unit"], zone, start, end, limit)
        source = f"{interval['interval']} {interval['unit'].lower()} apart"
    if len(slots) > limit:
        raise BackfillInvalid("end_time", f"the range holds more than {limit} slots {source}, more runs than a "
                                          "backfill may make (LAKEFLOW_BACKFILL_MAX_RUNS): shorten the range"
                                          + (" or choose a longer interval" if "interval" in cadence else ""))
    if not slots:
        raise BackfillInvalid("start_time", f"the range holds no slot {source}")
    return slots


def existing_runs(job, start, end):
    """The job's runs of slots in [start, end), as the policies read them: (slot, run id, outcome).
    A scheduled run has its slot; a backfill run its trigger time."""
    rows = Run.objects.filter(job=job).filter(
        Q(trigger_slot__gte=start, trigger_slot__lt=end)
        | Q(trigger=Run.Trigger.BACKFILL, trigger_time__gte=start, trigger_time__lt=end)
    ).values_list("id", "trigger_slot", "trigger_time", "life_cycle_state", "result_state")
    return [(slot or trigger_time, run_id, rules.outcome_of(life_cycle_state, result_state))
            for run_id, slot, trigger_time, life_cycle_state, result_state in rows]


def create_backfill(job, request, user=None, now=None):
    """Save the backfill `request` plans and start its first runs; returns it."""
    now = now or timezone.now()
    plan = plan_backfill(job, request, now)
    with transaction.atomic():
        backfill = Backfill.objects.create(
            job=job, creator=user, created_at=now, start_time=request.start_time, end_time=request.end_time,
            cadence=plan.cadence, timezone_id=plan.timezone_id,
            parameter=plan.fill[0] if plan.fill else "", parameter_form=plan.fill[1] if plan.fill else "",
            job_parameters=plan.job_parameters, reprocess_policy=plan.reprocess_policy, order=plan.order,
            max_concurrent_runs=plan.max_concurrent_runs, slots=[slot.isoformat() for slot in plan.slots],
        )
        who = f" by {user.get_username()}" if user is not None else ""
        noted(backfill, "backfill.created", now, f"created{who}: {len(plan.slots)} slot(s), {plan.reprocess_policy} "
                                                 f"slots, {plan.order.lower().replace('_', ' ')}, at most "
                                                 f"{plan.max_concurrent_runs} run(s) at once")
    drive_backfill(backfill.id, now)
    return backfill
