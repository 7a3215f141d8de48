"""Dashboard pages of runs: the runs list, a run's page (live graph, Gantt, task attempts, root
cause, repair history) and its actions (cancel run, cancel task, repair), all behind sign-in."""

import json
import os

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from jobs.pages import posted_parameters
from jobs.permissions import check, viewable_jobs
from jobs.spec.access import Action
from jobs.query_params import query_int
from runs import dispatch
from runs.engine.states import RunLifeCycleState as L, is_finished
from runs.event_log import event_rows
from runs.environments import setup_of
from runs.task_logs import executed_notebook_html, read_task_log_from, read_task_log_tail, redactor
from runs.live import run_snapshot, state_class, state_label
from runs.models import Run, TaskRun
from runs.repair import RepairRefused, preview_repair, repair_run as repair_run_now
from runs.rootcause import explain

RUNS_PER_PAGE = 50
LOG_PAGE_BYTES = 256 * 1024


def find_run_or_404(user, run_id, job_id=None, action=Action.VIEW):
    """The run, if it exists and `user` may do `action` on its job (403 otherwise), with what
    the user may do there as `run.can`."""
    runs = Run.objects.select_related("job", "job_version", "creator", "run_as")
    run = runs.filter(id=run_id).first()
    if run is None or (job_id is not None and run.job_id != job_id):
        raise Http404(f"Run {run_id} does not exist")
    run.can = check(user, run.job_id, action)
    return run


def find_task_run_or_404(user, task_run_id, action=Action.VIEW):
    attempt = TaskRun.objects.select_related("run", "run__job").filter(id=task_run_id).first()
    if attempt is None:
        raise Http404(f"Task run {task_run_id} does not exist")
    attempt.can = check(user, attempt.run.job_id, action)
    return attempt


def run_url(run, **query):
    url = reverse("runs:detail", kwargs={"job_id": run.job_id, "run_id": run.id})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@login_required
def run_list(request):
    runs = viewable_jobs(Run.objects.select_related("job"), request.user, "job_id").order_by("-id")
    state = request.GET.get("state", "")
    if state == "active":
        runs = runs.exclude(life_cycle_state__in=[L.TERMINATED, L.SKIPPED, L.INTERNAL_ERROR])
    elif state == "failed":
        runs = runs.filter(result_state__in=["FAILED", "TIMEDOUT", "CANCELED"])
    before = query_int(request, "before")
    if before is not None:  # keyset pages: no COUNT(*) over millions of runs
        runs = runs.filter(id__lt=before)
    page = list(runs[:RUNS_PER_PAGE + 1])
    now = timezone.now()
    rows = [{"run": run, "state": state_class(run.life_cycle_state, run.result_state),
             "label": state_label(run.life_cycle_state, run.result_state),
             "seconds": ((run.ended_at or now) - (run.started_at or run.created_at)).total_seconds()}
            for run in page[:RUNS_PER_PAGE]]
    next_before = page[RUNS_PER_PAGE - 1].id if len(page) > RUNS_PER_PAGE else None
    return render(request, "runs/list.html", {"nav": "runs", "rows": rows, "state": state, "next_before": next_before})


@login_required
def run_redirect(request, run_id):
    """/runs/<id>/ for a run id or a task run id (the API hands out both)."""
    run = Run.objects.filter(id=run_id).first()
    if run is not None:
        check(request.user, run.job_id, Action.VIEW)  # the redirect would tell the run's job
        return redirect(run_url(run))
    attempt = find_task_run_or_404(request.user, run_id)
    return redirect(run_url(attempt.run, task=attempt.id))


def repair_choices(run, snapshot):
    """Task keys of the run with those preselected for a repair: what the engine would re-run for
    "the failed tasks and their dependents" (runs/repair.py plan_repair, as the repair itself)."""
    latest = run.repairs.order_by("-id").values_list("id", flat=True).first()
    try:
        chosen = set(preview_repair(run.id, rerun_all_failed_tasks=True, rerun_dependent_tasks=True,
                                    latest_repair_id=latest).tasks)
    except RepairRefused:  # nothing failed: nothing preselected
        chosen = set()
    return [{"key": node["key"], "label": node["label"], "state": node["state"], "checked": node["key"] in chosen}
            for node in snapshot["nodes"]]


def repair_history(run):
    entries = [{"label": "Original run", "at": run.created_at, "tasks": None, "state": None}]
    for number, repair in enumerate(run.repairs.order_by("id"), start=1):
        entries.append({"label": f"Repair {number}", "id": repair.id, "at": repair.created_at,
                        "tasks": repair.rerun_tasks, "by": repair.creator,
                        "state": state_class(repair.life_cycle_state, repair.result_state),
                        "state_label": state_label(repair.life_cycle_state, repair.result_state)})
    return entries


@login_required
def run_detail(request, job_id, run_id):
    if not Run.objects.filter(id=run_id).exists():
        # The API's run_page_url of a task run: open its run with that attempt selected.
        attempt = TaskRun.objects.select_related("run").filter(id=run_id, run__job_id=job_id).first()
        if attempt is not None:
            check(request.user, job_id, Action.VIEW)
            return redirect(run_url(attempt.run, task=attempt.id))
    run = find_run_or_404(request.user, run_id, job_id)
    snapshot = run_snapshot(run)
    selected = None
    wanted = query_int(request, "task")
    if wanted is not None:
        selected = TaskRun.objects.filter(id=wanted, run=run).first()
    can = run.can
    root_cause = explain(run) if snapshot["finished"] else None
    if root_cause and not can["logs"]:  # the log's last lines are for CAN_MANAGE_RUN and up
        for origin in root_cause.get("origins") or []:
            origin.pop("last_log_lines", None)
    if selected is None and root_cause and root_cause.get("origins"):
        selected = TaskRun.objects.filter(id=root_cause["origins"][0]["task_run_id"]).first()
    return render(request, "runs/detail.html", {
        "nav": "jobs", "run": run, "job": run.job, "snapshot": snapshot,
        "root_cause": root_cause, "repairs": repair_history(run), "selected": selected,
        "repair_choices": repair_choices(run, snapshot) if snapshot["finished"] else [],
        "latest_repair_id": run.repairs.order_by("-id").values_list("id", flat=True).first(),
        "events": timed_events(event_rows(run)),
        "parameters": run.job_parameters or [], "job_deleted": run.job.deleted_at is not None,
        "parent_run": run.parent_task_run.run if run.parent_task_run_id else None,
        "can": can,
    })


def timed_events(rows):
    """The run's event rows with their local time of day as text (12:34:56.789): formatted here,
    once per row, as the page lists up to EVENTS_SHOWN of them (a big for-each's first 500) and
    the template's date filter costed about half of the whole page's time."""
    for row in rows:
        row["time"] = timezone.localtime(row["at"]).strftime("%H:%M:%S.%f")[:12]
    return rows


@login_required
def run_state(request, run_id):
    """The polling fallback of the live page: the same snapshot the websocket sends."""
    return JsonResponse(run_snapshot(find_run_or_404(request.user, run_id)))


@login_required
@require_POST
def cancel_run(request, run_id):
    run = find_run_or_404(request.user, run_id, action=Action.RUN)
    if dispatch.cancel_run(run.id, message=f"Canceled by {request.user.get_username()}"):
        messages.info(request, f"Canceling run {run.id}.")
    else:
        messages.warning(request, f"Run {run.id} had already finished; there was nothing to cancel.")
    return redirect(run_url(run))


@login_required
@require_POST
def cancel_task(request, task_run_id):
    attempt = find_task_run_or_404(request.user, task_run_id, Action.RUN)
    if is_finished(attempt.life_cycle_state):
        messages.warning(request, f"Task {attempt.task_key} had already finished; there was nothing to cancel.")
    else:
        dispatch.cancel_task_run(attempt.id)
        messages.info(request, f"Canceling task {attempt.task_key}.")
    return redirect(run_url(attempt.run, task=attempt.id))


@login_required
@require_POST
def repair_run(request, run_id):
    from runs.engine.parameters import ParametersInvalid

    run = find_run_or_404(request.user, run_id, action=Action.RUN)
    keys = request.POST.getlist("rerun_tasks")
    latest = run.repairs.order_by("-id").values_list("id", flat=True).first()
    try:
        parameters = posted_parameters(request.POST)
        repair_run_now(run.id, rerun_tasks=keys or None, rerun_all_failed_tasks=not keys, job_parameters=parameters,
               latest_repair_id=latest, user=request.user)
    except (RepairRefused, ParametersInvalid, ValueError) as exc:
        messages.error(request, f"The repair did not start: {exc}")
    else:
        messages.success(request, f"Repairing {', '.join(keys) if keys else 'the failed tasks'}.")
    return redirect(run_url(run))


def task_output(attempt):
    """What the attempt produced, for its panel: notebook result, SQL preview, task values (the
    results and values with the secret values the attempt fetched redacted)."""
    redact = redactor(attempt)
    output = {"values": redact(attempt.task_values or {}), "notebook_result": None, "sql": attempt.sql_output,
              "notebook_html": bool(attempt.executed_notebook)}
    if attempt.notebook_result is not None:
        result = attempt.notebook_result
        output["notebook_result"] = redact(result.get("result") if isinstance(result, dict) else result)
    return output


ITERATION_CHIPS = 200  # a for-each's panel shows its first iterations; runs/get and the stats have all


@login_required
def task_panel(request, task_run_id):
    """One attempt's details, as an HTML fragment the run page swaps in (or a page of its own)."""
    attempt = find_task_run_or_404(request.user, task_run_id)
    can = attempt.can
    tail = (read_task_log_tail(attempt, LOG_PAGE_BYTES, finished=is_finished(attempt.life_cycle_state))
            if can["logs"] else None)
    siblings = TaskRun.objects.filter(run=attempt.run, task_key=attempt.task_key,
                                      for_each_key=attempt.for_each_key, iteration=attempt.iteration).order_by("id")
    iterations, iterations_total = [], 0
    if attempt.task_type == "for_each_task":
        # The first ITERATION_CHIPS, each with its state class (the template does no lookups per chip).
        current = TaskRun.objects.filter(run=attempt.run, for_each_key=attempt.task_key, is_current=True)
        iterations = list(current.order_by("iteration").only(
            "id", "iteration", "iteration_input", "life_cycle_state", "result_state")[:ITERATION_CHIPS])
        for row in iterations:
            row.state = state_class(row.life_cycle_state, row.result_state)
        iterations_total = current.count() if len(iterations) == ITERATION_CHIPS else len(iterations)
    context = {
        "attempt": attempt, "run": attempt.run, "log": tail.text if tail else "",
        "log_truncated": bool(tail and tail.truncated), "log_offset": tail.end if tail else log_size(attempt),
        "output": task_output(attempt), "attempts": list(siblings),
        "state": state_class(attempt.life_cycle_state, attempt.result_state),
        "label": state_label(attempt.life_cycle_state, attempt.result_state),
        "finished": is_finished(attempt.life_cycle_state), "iterations": iterations,
        "iterations_total": iterations_total,
        "resolved": json.dumps(attempt.resolved_values, indent=2) if attempt.resolved_values else "",
        "events": event_rows(attempt.run, task_run=attempt), "can": can,
        "setup": setup_of(attempt) if can["logs"] else None,
    }
    template = "runs/_task_panel.html" if request.GET.get("fragment") else "runs/task_page.html"
    return render(request, template, context)


def log_size(attempt):
    try:
        return os.lstat(attempt.log_path).st_size if attempt.log_path else 0
    except OSError:
        return 0


@login_required
def task_log(request, task_run_id):
    """Log bytes from `offset` on (at most LOG_PAGE_BYTES), for the live-tailing log view."""
    attempt = find_task_run_or_404(request.user, task_run_id, Action.VIEW_LOGS)
    finished = is_finished(attempt.life_cycle_state)  # read before the log: its last bytes are then written
    text, offset = read_task_log_from(attempt, query_int(request, "offset", 0), LOG_PAGE_BYTES, finished=finished)
    return JsonResponse({"text": text, "offset": offset, "finished": finished})


@login_required
def task_output_html(request, task_run_id):
    """The executed notebook rendered to HTML (nbconvert with the bleach cleaner), in a sandboxed frame."""
    attempt = find_task_run_or_404(request.user, task_run_id)
    if not attempt.executed_notebook:
        raise Http404("This task run kept no notebook")
    try:
        html = executed_notebook_html(attempt)
    except OSError as exc:  # gone, or rewritten by its own task into something else
        raise Http404(f"Task run {attempt.id}: {exc}") from None
    response = HttpResponse(html)
    # Notebook output is the user's HTML: no scripts, and it cannot reach this site's cookies.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response
