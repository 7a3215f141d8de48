"""Dashboard pages of jobs: the jobs list and a job's page (run-history matrix, duration and cost
charts, Run now). They show runs, so they live here; authoring (new, edit, versions) is jobs/authoring.py."""

import json
import re
from html import escape

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models.expressions import RawSQL
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from jobs.pages import find_job_or_404, live_jobs, posted_parameters
from jobs.permissions import acl_body, check, viewable_jobs
from jobs.spec.access import LEVELS, PRINCIPAL_KINDS, Action
from jobs.spec.deployment import LOCKED_REASON, bundle_metadata_path, bundle_summary, is_ui_locked
from jobs.spec.task_types import unsupported_tasks
from jobs.query_params import query_int
from runs.admission import RunRefused, create_run
from runs.engine.parameters import ParametersInvalid
from runs.live import state_class, state_label
from runs.models import Run, TaskRun, TriggerDecision, TriggerState
from runs.trigger_summaries import trigger_rows, trigger_summary
from workspace.rules import WorkspaceRefused
from workspace.store import read_file

JOBS_PER_PAGE = 25
CHIPS_PER_JOB = 8
RUNS_IN_MATRIX = 25
RUNS_IN_CHART = 200
DECISIONS_SHOWN = 20
LINK_JOB, LINK_RUN = 9_000_000_001, 9_000_000_002  # placeholders in a reversed run link
TAG_FILTER = re.compile(r"^([A-Za-z0-9_.\-]+)(?::(.*))?$")


def run_chip(run):
    return {"id": run.id, "state": state_class(run.life_cycle_state, run.result_state),
            "label": state_label(run.life_cycle_state, run.result_state), "at": run.created_at}


def filter_jobs(jobs, query):
    """Words match the name; `tag:key` or `tag:key:value` match a tag (JSON lookups, indexed by name order)."""
    for word in query.split():
        if word.startswith("tag:") and TAG_FILTER.match(word[4:]) and "__" not in word:
            key, value = TAG_FILTER.match(word[4:]).groups()
            lookup = f"current_version__settings__tags__{key}"
            jobs = jobs.filter(**({lookup: value} if value is not None else {"current_version__settings__tags__has_key": key}))
        else:
            jobs = jobs.filter(name__icontains=word)
    return jobs


@login_required
def job_list(request):
    query = request.GET.get("q", "").strip()
    jobs = filter_jobs(viewable_jobs(live_jobs(), request.user, whole=True), query).select_related("current_version")
    jobs = jobs.order_by("name", "id")
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    job_ids = [job.id for job in page]
    states = {}
    for state in TriggerState.objects.filter(job_id__in=job_ids).order_by("position"):
        states.setdefault(state.job_id, []).append(state)
    chips = recent_chips(job_ids)
    rows = [{"job": job, "tags": job.settings.get("tags") or {}, "chips": chips.get(job.id, ""),
             "trigger": trigger_summary(states.get(job.id, [])), "tasks": len(job.settings.get("tasks") or [])}
            for job in page]
    return render(request, "jobs/list.html", {"nav": "jobs", "rows": rows, "page": page, "query": query})


def recent_chips(job_ids):
    """{job id: the HTML of its newest CHIPS_PER_JOB runs' chips, oldest first}, from one query
    whatever the number of jobs: the ids come from a UNION ALL of one LIMIT per job, each a range
    of an index on (job, id) (run_job_newest; on SQLite the job's own index, which holds the
    rowid), so the cost follows the chips shown, not the runs stored. The chips are built here
    rather than in the template: 200 of them through {% url %} and |date cost more than the
    rest of the page."""
    if not job_ids:
        return {}
    newest = (f"SELECT id FROM (SELECT id FROM {connection.ops.quote_name(Run._meta.db_table)} "
              f"WHERE job_id = %s ORDER BY id DESC LIMIT {CHIPS_PER_JOB}) AS newest")
    runs = Run.objects.filter(id__in=RawSQL(" UNION ALL ".join([newest] * len(job_ids)), job_ids)).order_by(
        "id").values_list("job_id", "id", "life_cycle_state", "result_state", "created_at")
    # One reverse() per page: the runs' links differ only in their two ids. Ids and times need no
    # escaping; a state's class and label are escaped once per page.
    head, rest = escape(reverse("runs:detail", args=[LINK_JOB, LINK_RUN])).split(str(LINK_JOB))
    middle, tail = rest.split(str(LINK_RUN))
    states, chips, zone = {}, {}, timezone.get_current_timezone()  # once: each lookup reads a context-local
    for job_id, run_id, life_cycle_state, result_state, created_at in runs:
        state = states.get((life_cycle_state, result_state))
        if state is None:
            state = states[life_cycle_state, result_state] = (escape(state_class(life_cycle_state, result_state)),
                                                              escape(state_label(life_cycle_state, result_state)))
        chips.setdefault(job_id, []).append(
            f'<a href="{head}{job_id}{middle}{run_id}{tail}" title="Run {run_id}: {state[1]} · '
            f'{created_at.astimezone(zone).isoformat(" ", "seconds")[:19]}" class="chip state-{state[0]}"></a>')
    return {job_id: mark_safe("".join(html)) for job_id, html in chips.items()}


def matrix(job, runs):
    """Rows: task keys (the current version's order, then keys only older runs had); columns: runs."""
    attempts = TaskRun.objects.filter(run__in=runs, for_each_key="", is_current=True).only(
        "id", "run_id", "task_key", "life_cycle_state", "result_state", "started_at", "ended_at", "attempt_number")
    cells, keys = {}, [t["task_key"] for t in job.settings.get("tasks") or []]
    now = timezone.now()
    for attempt in attempts:
        cells[(attempt.task_key, attempt.run_id)] = {
            "task_run_id": attempt.id, "state": state_class(attempt.life_cycle_state, attempt.result_state),
            "label": state_label(attempt.life_cycle_state, attempt.result_state), "attempt": attempt.attempt_number,
            "seconds": (((attempt.ended_at or now) - attempt.started_at).total_seconds() if attempt.started_at else None)}
        if attempt.task_key not in keys:
            keys.append(attempt.task_key)
    return [{"key": key, "cells": [cells.get((key, run.id)) for run in runs]} for key in keys]


def history_series(job):
    """The last RUNS_IN_CHART finished runs, oldest first, for the plotly trend charts: (their
    durations, the cost of those whose cost was measured), from one read."""
    runs = list(Run.objects.filter(job=job, ended_at__isnull=False).order_by("-id")
                .values("id", "created_at", "started_at", "ended_at", "result_state", "cost",
                        "cpu_seconds")[:RUNS_IN_CHART])[::-1]
    durations = [{"run_id": r["id"], "at": (r["started_at"] or r["created_at"]).isoformat(),
                  "seconds": round((r["ended_at"] - (r["started_at"] or r["created_at"])).total_seconds(), 3),
                  "failed": r["result_state"] not in ("SUCCESS", "SUCCESS_WITH_FAILURES")} for r in runs]
    costs = [{"run_id": r["id"], "at": point["at"], "cost": r["cost"], "cpu_seconds": r["cpu_seconds"],
              "failed": point["failed"]} for r, point in zip(runs, durations) if r["cost"] is not None]
    return durations, {"currency": settings.LAKEFLOW_COST_CURRENCY, "runs": costs}


def acl_rows(job):
    """The Permissions dialog's rows: (kind, name, shown name, level, inherited)."""
    rows = []
    for entry in acl_body(job)["access_control_list"]:
        kind = next(k for k in PRINCIPAL_KINDS if k in entry)
        permission = entry["all_permissions"][0]
        rows.append({"kind": kind, "name": entry[kind], "display": entry.get("display_name") or entry[kind],
                     "level": permission["permission_level"], "inherited": permission["inherited"]})
    return rows


def bundle_of(job):
    """The bundle a job was deployed from, read from its metadata file in the workspace; None for a
    job no bundle deployed. A missing or unreadable file leaves only its path to show."""
    path = bundle_metadata_path(job.settings)
    if path is None:
        return None
    try:
        summary = bundle_summary(json.loads(read_file(path)), job.id)
    # A broken file (nested too deep to parse among them: anyone may write /Workspace/Shared),
    # or a path that is not one.
    except (OSError, ValueError, RecursionError, WorkspaceRefused):
        summary = None
    return {"metadata_path": path, **(summary or {})}


@login_required
def job_detail(request, job_id):
    job = find_job_or_404(job_id)
    can = check(request.user, job.id, Action.VIEW)
    runs = Run.objects.filter(job=job).order_by("-id")
    before = query_int(request, "before")
    if before is not None:
        runs = runs.filter(id__lt=before)
    runs = list(runs[:RUNS_IN_MATRIX])
    older = runs and Run.objects.filter(job=job, id__lt=runs[-1].id).exists()
    now = timezone.now()
    columns = [{**run_chip(run), "trigger": run.trigger, "repairs": run.repair_count,
                "seconds": ((run.ended_at or now) - (run.started_at or run.created_at)).total_seconds(),
                "cost": run.cost, "cpu_seconds": run.cpu_seconds}
               for run in runs]
    parameters = job.settings.get("parameters") or []
    triggers = list(TriggerState.objects.filter(job=job).order_by("position"))
    durations, costs = history_series(job)
    return render(request, "jobs/detail.html", {
        "nav": "jobs", "job": job, "settings": job.settings, "columns": columns, "matrix": matrix(job, runs),
        "older": runs[-1].id if older else None, "newest_first": before is None,
        "trigger": trigger_summary(triggers), "triggers": trigger_rows(triggers),
        "decisions": list(TriggerDecision.objects.filter(job=job).order_by("-id")[:DECISIONS_SHOWN]),
        "parameters": parameters, "chart": durations, "cost_chart": costs,
        "version": job.current_version, "can_manage": can["manage"], "can": can,
        "acl": acl_rows(job), "levels": LEVELS, "principal_kinds": PRINCIPAL_KINDS,
        "unsupported": unsupported_tasks(job.settings),
        "bundle": bundle_of(job), "locked_reason": LOCKED_REASON if is_ui_locked(job.settings) else "",
    })


@login_required
@require_POST
def run_now(request, job_id):
    job = find_job_or_404(job_id)
    check(request.user, job.id, Action.RUN)
    try:
        parameters = posted_parameters(request.POST)
        run, _ = create_run(job, job_parameters=parameters, creator=request.user)
    except (ValueError, RunRefused, ParametersInvalid) as exc:
        messages.error(request, f"The run did not start: {exc}")
        return redirect("jobs:detail", job_id=job.id)
    return redirect("runs:detail", job_id=job.id, run_id=run.id)
