"""The Usage page: which jobs cost the most and ran the longest over a time range, with their
cost per day. Everything is summed in the database over Run's own sums (cpu_seconds and cost,
added up as each attempt ends), never over task runs and never row by row in Python: a constant
number of queries, whatever the number of jobs and runs."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import CharField, Count, FloatField, Func, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.permissions import viewable_jobs
from runs.models import Run

TOP_JOBS = 10
MAX_DAYS = 366  # a custom range: the trend has a point per day, the page stays small
PRESETS = {"24h": ("24 h", timedelta(hours=24)), "7d": ("7 d", timedelta(days=7)),
           "30d": ("30 d", timedelta(days=30)), "90d": ("90 d", timedelta(days=90))}
DEFAULT_PRESET = "7d"


class RangeInvalid(ValueError):
    pass


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    preset: str  # "" for a custom range
    hourly: bool  # the trend's buckets: hours for a range of two days or less, else days

    @property
    def buckets(self):
        """Every bucket key of the range, oldest first, as Bucket makes them in SQL."""
        step = timedelta(hours=1) if self.hourly else timedelta(days=1)
        at = self.start.replace(minute=0, second=0, microsecond=0)
        if not self.hourly:
            at = at.replace(hour=0)
        keys = []
        while at < self.end:
            keys.append(at.strftime(Bucket.PYTHON_FORMATS[self.hourly]))
            at += step
        return keys


def parse_day(text, name):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeInvalid(f"{name} must be a date like 2026-12-01, not {text!r}") from None


def time_range(query, now):
    """The range the page's query asks for: a preset (`range`, the last 24 h / 7 d / 30 d / 90 d
    up to now) or whole UTC days `from`..`to` (both included; `to` defaults to today). Raises
    RangeInvalid naming the parameter."""
    first, last = query.get("from", "").strip(), query.get("to", "").strip()
    if first or last:
        if not first:
            raise RangeInvalid("from is needed with to: the first day of the range (like 2026-12-01)")
        start_day = parse_day(first, "from")
        end_day = parse_day(last, "to") if last else now.date()
        if end_day < start_day:
            raise RangeInvalid(f"from ({start_day}) is after to ({end_day})")
        if end_day >= date.max:  # the range ends at the start of the day after `to`
            raise RangeInvalid(f"to must be a day before {date.max}, not {end_day}")
        if (end_day - start_day).days + 1 > MAX_DAYS:
            raise RangeInvalid(f"The range from {start_day} to {end_day} is longer than {MAX_DAYS} days")
        start = datetime.combine(start_day, time.min, tzinfo=dt_timezone.utc)
        end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=dt_timezone.utc)
        return TimeRange(start, end, "", hourly=end - start <= timedelta(days=2))
    preset = query.get("range", "").strip() or DEFAULT_PRESET
    if preset not in PRESETS:
        raise RangeInvalid(f"range must be one of {', '.join(PRESETS)}, not {preset!r}")
    span = PRESETS[preset][1]
    return TimeRange(now - span, now, preset, hourly=span <= timedelta(days=2))


class Seconds(Func):
    """end - start in seconds in SQL. Django's own datetime subtraction calls back into Python
    for every row on SQLite; julianday and EXTRACT(EPOCH) stay in the database."""

    arity = 2
    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
                           arg_joiner=") - julianday(", **extra)


class Bucket(Func):
    """created_at's UTC day (or hour) as text, in SQL (Trunc calls back into Python on SQLite)."""

    arity = 1
    output_field = CharField()
    PYTHON_FORMATS = {False: "%Y-%m-%d", True: "%Y-%m-%dT%H:00"}
    POSTGRES_FORMATS = {False: "YYYY-MM-DD", True: 'YYYY-MM-DD"T"HH24:00'}

    def __init__(self, expression, hourly):
        super().__init__(expression)
        self.hourly = hourly

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"strftime(%s, {sql})", (self.PYTHON_FORMATS[self.hourly], *params)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection,
                           template=f"to_char(%(expressions)s AT TIME ZONE 'UTC', '{self.POSTGRES_FORMATS[self.hourly]}')",
                           **extra)


def run_seconds():
    """A finished run's duration, as the job page's chart counts it (from its start past the
    queue, else its creation); NULL while it runs, so sums count finished runs only."""
    return Seconds("ended_at", Coalesce("started_at", "created_at"))


def job_page_exists(job):
    return job.kind == Job.Kind.JOB and job.deleted_at is None


def usage_of(user, span, top=TOP_JOBS):
    """The page's figures for `span`, over the jobs `user` may see. One GROUP BY job over the
    range's runs (a row per job, not per run) gives the totals and both rankings."""
    runs = viewable_jobs(Run.objects.filter(created_at__gte=span.start, created_at__lt=span.end), user,
                         "job_id", whole=True)
    per_job = list(runs.values("job_id").annotate(runs=Count("id"), cpu_seconds=Sum("cpu_seconds"),
                                                  cost=Sum("cost"), seconds=Sum(run_seconds())).order_by())
    by_cost = sorted((row for row in per_job if row["cost"] is not None),
                     key=lambda row: (-row["cost"], row["job_id"]))[:top]
    by_duration = sorted((row for row in per_job if row["seconds"] is not None),
                         key=lambda row: (-row["seconds"], row["job_id"]))[:top]
    jobs = {job.id: job for job in Job.objects.filter(id__in={r["job_id"] for r in by_cost + by_duration})
            .only("id", "name", "kind", "deleted_at")}
    for row in by_cost + by_duration:
        row["job"] = jobs[row["job_id"]]
        row["linked"] = job_page_exists(row["job"])
    return {"totals": totals_of(per_job), "by_cost": by_cost, "by_duration": by_duration,
            "trend": cost_trend(runs, span, [row["job"] for row in by_cost])}


def totals_of(per_job):
    """The range's sums from the jobs' sums; None (not measured) where no job has one."""
    def total(name):
        found = [row[name] for row in per_job if row[name] is not None]
        return sum(found) if found else None
    return {"runs": sum(row["runs"] for row in per_job), "cpu_seconds": total("cpu_seconds"),
            "cost": total("cost"), "seconds": total("seconds")}


def cost_trend(runs, span, jobs):
    """Cost per day (per hour for short ranges) of each of `jobs`, for plotly: a trace each, every
    bucket of the range present (0 where the job did not run; None where it ran unmeasured)."""
    keys = span.buckets
    rows = (runs.filter(job_id__in=[job.id for job in jobs]).annotate(bucket=Bucket("created_at", span.hourly))
            .values("job_id", "bucket").annotate(cost=Sum("cost")).order_by())
    found = {(row["job_id"], row["bucket"]): row["cost"] for row in rows}
    return {"buckets": keys, "hourly": span.hourly, "currency": settings.LAKEFLOW_COST_CURRENCY,
            "traces": [{"job_id": job.id, "name": job.name or f"job {job.id}",
                        "url": reverse("jobs:detail", args=[job.id]) if job_page_exists(job) else None,
                        "cost": [found.get((job.id, key), 0) for key in keys]} for job in jobs]}


@login_required
def usage_page(request):
    now = timezone.now()
    problem, span, figures = "", None, None
    try:
        span = time_range(request.GET, now)
    except RangeInvalid as exc:
        problem = str(exc)
    else:
        figures = usage_of(request.user, span)
    tables = figures and [
        {"id": "top-by-cost", "title": "Top jobs by cost", "rows": figures["by_cost"],
         "empty": "No run in this range has a measured cost."},
        {"id": "top-by-duration", "title": "Top jobs by run time", "rows": figures["by_duration"],
         "empty": "No run finished in this range."}]
    return render(request, "runs/usage.html", {
        "nav": "usage", "problem": problem, "span": span, "figures": figures, "tables": tables, "presets": PRESETS,
        "wanted": {name: request.GET.get(name, "") for name in ("from", "to")},
        "end_day": span and (span.end - timedelta(microseconds=1)).date(),
    }, status=400 if problem else 200)
