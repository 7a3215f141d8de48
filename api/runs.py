"""Jobs API 2.2 and 2.1 endpoints that make or act on runs: jobs/run-now, jobs/delete (which
cancels the job's active runs), and jobs/runs/*.

A `run_id` names a job run or, where Databricks allows it (runs/get, runs/cancel,
runs/get-output, runs/export), a task run: one attempt of one task.
"""

from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import FileResponse
from django.utils import timezone

from api.jobs import acl_param, find_job, soft_delete_job
from jobs.permissions import check, grant_on_create, jobs_where, may, viewable_jobs
from jobs.spec.access import Action
from api.http import (
    ApiError,
    list_page_body,
    api_view,
    authenticate,
    bool_param,
    client_errors,
    decode_page_token,
    does_not_exist,
    encode_page_token,
    id_param,
    int_param,
    invalid,
    invalid_state,
    keyset_page,
    next_object_page_token,
    object_page_number,
    object_param,
    str_list_param,
    str_param,
)
from jobs.models import Job
from jobs.spec.api_2_0 import check_legacy_parameters
from jobs.spec.settings import INT32_MAX, validate_job_settings
from runs import dispatch, repair
from runs.admission import RunRefused, create_run
from runs.engine.parameters import ParametersInvalid
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L, is_finished
from runs.event_log import describe
from runs.dbt_artifacts import signer_of_link
from runs.task_logs import Withheld, open_dbt_artifacts
from runs.models import Run, RunEvent, TaskRun
from jobs.checks import check_settings_against_server
from api.serializers import export_html, ms, notebook_views, run_dict, run_output_dict, task_run_as_run

# Per-task-type parameters of API 2.0/2.1; this server takes job_parameters instead.
LEGACY_PARAMETERS = ("jar_params", "notebook_params", "python_params", "python_named_params",
                     "spark_submit_params", "sql_params", "dbt_commands", "pipeline_params")
# runs/submit body fields that are about the request, not the run's settings.
SUBMIT_REQUEST_FIELDS = ("idempotency_token", "access_control_list")
MAX_RUNS_PAGE = 25
MAX_EVENTS_PAGE = 1000
# 9999-12-31T23:59:59.999Z in epoch milliseconds: the last instant a datetime can hold.
MAX_EPOCH_MS = 253_402_300_799_999


def base_url(request):
    return request.build_absolute_uri("/").rstrip("/")


def find_run(run_id):
    run = Run.objects.select_related("job", "job_version", "creator").filter(id=run_id).first()
    if run is None:
        raise does_not_exist("Run", run_id)
    return run


def find_task_run(run_id):
    attempt = TaskRun.objects.select_related("run__job_version", "run__creator").filter(id=run_id).first()
    if attempt is None:
        raise does_not_exist("Run", run_id)
    return attempt


def refuse_legacy_parameters(data):
    for name in LEGACY_PARAMETERS:
        if data.get(name):
            raise invalid(f"{name} is not supported by this server: define parameters on the job and "
                          "pass job_parameters instead")


def idempotency_token(data):
    return str_param(data, "idempotency_token", max_length=64) or None


def state_words(row):
    return f"{row.life_cycle_state} {row.result_state}" if row.result_state else row.life_cycle_state


def cancel_runs(run_ids, message=None):
    # Queued ones first: canceling a running run frees its slot, which would start a queued one.
    runs = Run.objects.filter(id__in=run_ids).order_by("id").values_list("id", "life_cycle_state")
    for run_id, _ in sorted(runs, key=lambda row: row[1] != L.QUEUED):
        dispatch.cancel_run(run_id, message=message)


# --- jobs/run-now and jobs/delete ------------------------------------------------------------


@api_view("POST")
@client_errors(RunRefused, ParametersInvalid)
def run_now(request, data, api_version):
    job = find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.RUN)
    job_parameters = object_param(data, "job_parameters")
    # Per-task-type parameters (python_params, notebook_params, ...) are Databricks' older way,
    # still taken by every version for a job without job parameters; the two do not mix.
    legacy_parameters = check_legacy_parameters(data)
    if legacy_parameters and (job_parameters or job.settings.get("parameters")):
        raise invalid(f"{next(iter(legacy_parameters))} cannot be used with job parameters: this job defines "
                      "parameters, pass job_parameters instead")
    queue = object_param(data, "queue")
    run, _ = create_run(
        job,
        job_parameters=job_parameters,
        legacy_parameters=legacy_parameters,
        idempotency_token=idempotency_token(data),
        creator=request.user,
        queue_enabled=bool_param(queue, "enabled", default=None) if queue is not None else None,
        only=str_list_param(data, "only"),
    )
    return {"run_id": run.id, "number_in_job": run.id}


@api_view("POST")
def delete_job(request, data, api_version):
    job = find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.MANAGE)
    soft_delete_job(job)
    active = Run.objects.filter(job=job).exclude(life_cycle_state__in=FINISHED_LIFE_CYCLES)
    cancel_runs(list(active.values_list("id", flat=True)), message=f"Canceled: job {job.id} was deleted")
    return {}


# --- runs ----------------------------------------------------------------------------------


@api_view("POST")
@client_errors(RunRefused, ParametersInvalid)
def submit(request, data, api_version):
    token = idempotency_token(data)
    existing = Run.objects.filter(idempotency_token=token).first() if token else None
    if existing is not None:
        check(request.user, existing.job_id, Action.VIEW)
        return {"run_id": existing.id}
    requested = {key: value for key, value in data.items() if key not in SUBMIT_REQUEST_FIELDS}
    settings = check_settings_against_server(validate_job_settings(requested, api_version=api_version, for_submit=True),
                                             user=request.user)
    if not settings["tasks"]:
        raise invalid("tasks: a one-time run needs at least one task")
    with transaction.atomic():
        # The run's settings live in a hidden job, which jobs/list and jobs/get never show.
        job = Job(kind=Job.Kind.SUBMIT, creator=request.user)
        version = job.save_version(settings, request.user)
        grant_on_create(job, request.user, acl_param(data))  # a one-time run is governed by its submit ACL
        run, _ = create_run(job, version=version, run_type=Run.RunType.SUBMIT_RUN, run_name=settings["run_name"],
                            idempotency_token=token, creator=request.user)
    return {"run_id": run.id}


@api_view("GET")
def get_run(request, data, api_version):
    run_id = id_param(data, "run_id")
    include_resolved_values = bool_param(data, "include_resolved_values")
    run = Run.objects.select_related("job_version", "creator").filter(id=run_id).first()
    paged = api_version != "2.1"
    page = object_page_number(data) if paged else 0
    if run is None:
        attempt = find_task_run(run_id)  # a task run: a for-each's iterations are paged as a run's tasks
        check(request.user, attempt.run.job_id, Action.VIEW)
        body, more = task_run_as_run(attempt, base_url=base_url(request), now=timezone.now(),
                                     include_resolved_values=include_resolved_values, page=page, paged=paged)
    else:
        check(request.user, run.job_id, Action.VIEW)
        body, more = run_dict(run, base_url=base_url(request), now=timezone.now(),
                              include_history=bool_param(data, "include_history"),
                              include_resolved_values=include_resolved_values, page=page, paged=paged)
    if more:
        body["next_page_token"] = next_object_page_token(page)
    return body


def from_ms(value):
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@api_view("GET")
def list_runs(request, data, api_version):
    runs = viewable_jobs(Run.objects.select_related("job_version", "creator"), request.user, "job_id")
    job_id = id_param(data, "job_id", required=False)
    if job_id is not None:
        if not Job.objects.filter(id=job_id).exists():
            raise does_not_exist("Job", job_id)
        check(request.user, job_id, Action.VIEW)
        runs = runs.filter(job_id=job_id)
    active_only, completed_only = bool_param(data, "active_only"), bool_param(data, "completed_only")
    if active_only and completed_only:
        raise invalid("active_only and completed_only cannot both be true")
    if active_only:
        runs = runs.exclude(life_cycle_state__in=FINISHED_LIFE_CYCLES)
    if completed_only:
        runs = runs.filter(life_cycle_state__in=FINISHED_LIFE_CYCLES)
    run_type = str_param(data, "run_type", choices=Run.RunType.values)
    if run_type:
        runs = runs.filter(run_type=run_type)
    start_time_from = int_param(data, "start_time_from", low=0, high=MAX_EPOCH_MS)
    if start_time_from is not None:
        runs = runs.filter(created_at__gte=from_ms(start_time_from))
    start_time_to = int_param(data, "start_time_to", low=0, high=MAX_EPOCH_MS)
    if start_time_to is not None:
        runs = runs.filter(created_at__lte=from_ms(start_time_to))
    limit = int_param(data, "limit", default=20, low=0, high=MAX_RUNS_PAGE) or MAX_RUNS_PAGE
    rows, next_token, prev_token = keyset_page(runs, limit=limit, page_token=str_param(data, "page_token"),
                                               offset=int_param(data, "offset", default=0, low=0, high=INT32_MAX))
    expand_tasks = bool_param(data, "expand_tasks")
    now, url = timezone.now(), base_url(request)
    listed = []
    for run in rows:
        item, more = run_dict(run, base_url=url, now=now, with_tasks=expand_tasks)
        if expand_tasks:
            item["has_more"] = more
        listed.append(item)
    return list_page_body("runs", listed, next_token, prev_token)


@api_view("GET")
def get_run_output(request, data, api_version):
    run_id = id_param(data, "run_id")
    attempt = TaskRun.objects.select_related("run__job_version", "run__creator").filter(id=run_id).first()
    if attempt is None:
        if Run.objects.filter(id=run_id).exists():
            raise invalid(f"Run {run_id} is a job run with tasks: runs/get-output takes the run_id of one of its "
                          "task runs (tasks[].run_id in runs/get)")
        raise does_not_exist("Run", run_id)
    check(request.user, attempt.run.job_id, Action.VIEW)
    return run_output_dict(attempt, base_url=base_url(request), now=timezone.now(),
                           with_logs=may(request.user, attempt.run.job_id, Action.VIEW_LOGS), viewer=request.user)


@api_view("POST")
def cancel_run(request, data, api_version):
    run_id = id_param(data, "run_id")
    run = Run.objects.filter(id=run_id).first()
    if run is not None:
        check(request.user, run.job_id, Action.RUN)
        if not dispatch.cancel_run(run.id):
            run.refresh_from_db()
            raise invalid_state(f"Run {run.id} is already finished ({state_words(run)}); there is nothing to cancel")
        return {}
    attempt = find_task_run(run_id)
    check(request.user, attempt.run.job_id, Action.RUN)
    if is_finished(attempt.life_cycle_state):
        raise invalid_state(f"Run {attempt.id} is already finished ({state_words(attempt)}); "
                            "there is nothing to cancel")
    dispatch.cancel_task_run(attempt.id)
    return {}


@api_view("POST")
def cancel_all_runs(request, data, api_version):
    job_id = id_param(data, "job_id", required=False)
    all_queued_runs = bool_param(data, "all_queued_runs")
    if job_id is None and not all_queued_runs:
        raise invalid("Set job_id, all_queued_runs, or both")
    runs = jobs_where(Run.objects.all(), request.user, Action.RUN, "job_id")  # only runs the caller may cancel
    if job_id is not None:
        check(request.user, find_job(job_id).id, Action.RUN)
        runs = runs.filter(job_id=job_id)
    if all_queued_runs:
        runs = runs.filter(life_cycle_state=L.QUEUED)
    else:
        runs = runs.exclude(life_cycle_state__in=FINISHED_LIFE_CYCLES)
    cancel_runs(list(runs.values_list("id", flat=True)))
    return {}


@api_view("POST")
@client_errors(repair.RepairRefused, ParametersInvalid)
def repair_run(request, data, api_version):
    run = find_run(id_param(data, "run_id"))
    check(request.user, run.job_id, Action.RUN)
    refuse_legacy_parameters(data)
    if run.job.deleted_at is not None:
        raise invalid_state(f"Job {run.job_id} was deleted: its runs cannot be repaired")
    choices = dict(
        rerun_tasks=str_list_param(data, "rerun_tasks"),
        rerun_all_failed_tasks=bool_param(data, "rerun_all_failed_tasks"),
        rerun_dependent_tasks=bool_param(data, "rerun_dependent_tasks"),
        latest_repair_id=id_param(data, "latest_repair_id", required=False),
        job_parameters=object_param(data, "job_parameters"),
    )
    if bool_param(data, "dry_run"):  # ours: what the repair would re-run, changing nothing
        return {"dry_run": True, **repair.preview_repair(run.id, **choices).as_dict()}
    return {"repair_id": repair.repair_run(run.id, user=request.user, **choices).id}


@api_view("POST")
def delete_run(request, data, api_version):
    run = find_run(id_param(data, "run_id"))
    check(request.user, run.job_id, Action.MANAGE)
    deleted, _ = Run.objects.filter(id=run.id, life_cycle_state__in=FINISHED_LIFE_CYCLES).delete()
    if not deleted:
        run.refresh_from_db()
        raise invalid_state(f"Run {run.id} is still active ({run.life_cycle_state}): cancel it first; "
                            "only finished runs can be deleted")
    return {}


@api_view("GET")
def export_run(request, data, api_version):
    run_id = id_param(data, "run_id")
    views_to_export = str_param(data, "views_to_export", default="CODE", choices=("CODE", "DASHBOARDS", "ALL"))
    run = Run.objects.select_related("job_version").filter(id=run_id).first()
    attempt = find_task_run(run_id) if run is None else None
    job_id = run.job_id if run is not None else attempt.run.job_id
    check(request.user, job_id, Action.VIEW)
    if views_to_export == "DASHBOARDS":  # runs here have no dashboards
        return {"views": []}
    if attempt is not None and attempt.executed_notebook:
        return {"views": notebook_views([attempt])}
    run = run or attempt.run
    content = export_html(run, with_logs=may(request.user, job_id, Action.VIEW_LOGS))
    summary = {"name": run.run_name or f"Run {run.id}", "type": "NOTEBOOK", "content": content}
    notebooks = run.task_runs.exclude(executed_notebook="").filter(is_current=True).order_by("id")
    return {"views": [summary, *notebook_views(notebooks)]}


def link_or_token_user(request):
    """Who downloads: the user a pre-signed artifacts link was made for (no token needed, as
    Databricks' pre-signed links), else whoever the request authenticates as."""
    signature = request.GET.get("signature")
    if signature is None:
        return authenticate(request)
    user_id = signer_of_link(request.GET.get("run_id", ""), signature)
    user = get_user_model().objects.filter(id=user_id, is_active=True).first() if user_id else None
    if user is None:
        raise ApiError(403, "PERMISSION_DENIED", "This artifacts link is not valid (or older than 30 minutes): "
                                                 "ask runs/get-output for a new one")
    return user


@api_view("GET", authenticator=link_or_token_user)
def get_dbt_artifacts(request, data, api_version):
    """Ours: the tar.gz of a dbt task run's artifacts, where runs/get-output's dbt_output links.
    Like the run's log, for those who may read the job's logs."""
    attempt = find_task_run(id_param(data, "run_id"))
    check(request.user, attempt.run.job_id, Action.VIEW_LOGS)
    try:
        archive = open_dbt_artifacts(attempt)
    except Withheld as exc:
        raise ApiError(403, "PERMISSION_DENIED", str(exc)) from None
    if archive is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Run {attempt.id} has no dbt artifacts.")
    return FileResponse(archive, as_attachment=True, filename=f"dbt-artifacts-{attempt.id}.tar.gz",
                        content_type="application/gzip")


@api_view("GET")
def list_run_events(request, data, api_version):
    """Ours: a run's events, oldest first, each with the sentence that says why (the Events card of
    the run page). `run_id` names a job run, or a task run for that attempt's events only."""
    run_id = id_param(data, "run_id")
    run = Run.objects.filter(id=run_id).first()
    attempt = find_task_run(run_id) if run is None else None
    check(request.user, run.job_id if run else attempt.run.job_id, Action.VIEW)
    events = RunEvent.objects.filter(run=run) if run else RunEvent.objects.filter(task_run=attempt)
    limit = int_param(data, "limit", default=100, low=1, high=MAX_EVENTS_PAGE)
    token = str_param(data, "page_token")
    if token:
        events = events.filter(id__gt=decode_page_token(token, "after_event")["after_event"])
    rows = list(events.order_by("id")[:limit + 1])
    body = {"events": [event_dict(event) for event in rows[:limit]], "has_more": len(rows) > limit}
    if len(rows) > limit:
        body["next_page_token"] = encode_page_token({"after_event": rows[limit - 1].id})
    return body


def event_dict(event):
    data = event.data or {}
    item = {"event_id": event.id, "time": ms(event.at), "type": event.type, "run_id": event.run_id,
            "description": describe(event.type, data), "data": data}
    if event.task_run_id is not None:
        item.update(task_run_id=event.task_run_id, task_key=data.get("task_key", ""))
    return item
