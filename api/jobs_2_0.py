"""Jobs API 2.0, for older clients (the legacy `databricks-cli` speaks it by default).

Each view translates a 2.0 request to the 2.1 one (jobs/spec/api_2_0.py, pure), lets the 2.1
view answer it, and shows the answer the 2.0 way: a job written in the single-task format
(a top-level `notebook_task`, `new_cluster`... and no `tasks`) is stored as a one-task job and
read back as written. Endpoints whose shapes did not change in 2.0 are the 2.1 views.
"""

import json

from django.views.decorators.csrf import csrf_exempt

from api import jobs as jobs_api
from api import runs as runs_api
from api.http import api_view, id_param, int_param, object_param, str_list_param
from api.jobs import job_dict
from jobs.models import Job
from jobs.permissions import check, viewable_jobs
from jobs.spec.access import Action
from jobs.spec.api_2_0 import (
    run_as_2_0,
    run_is_single_task,
    settings_as_2_0,
    settings_from_2_0,
    update_from_2_0,
)
from runs.models import Run, TaskRun

# 2.0's runs/list takes a limit up to 1000; the 2.1 view's page is at most this.
RUNS_PAGE = runs_api.MAX_RUNS_PAGE


def with_body(request, body):
    """The request, now carrying `body` as its JSON: the 2.1 view reads it from there."""
    request._body = json.dumps(body).encode()
    return request


def with_query(request, **values):
    request.GET = request.GET.copy()
    for name, value in values.items():
        request.GET[name] = str(value)
    return request


def answer_of(response):
    """The 2.1 view's answer as a dict, or None when it is an error (passed on as it is)."""
    return json.loads(response.content) if response.status_code == 200 else None


def pass_on(view):
    """A 2.1 view whose request and answer 2.0 shares."""
    @csrf_exempt  # as the 2.1 view: Bearer calls carry no cookie, session calls it checks itself
    def view_2_0(request, api_version):
        return view(request, api_version="2.1")
    return view_2_0


@api_view("POST")
def create_job(request, data, api_version):
    settings = {key: value for key, value in data.items() if key != "access_control_list"}
    body = settings_from_2_0(settings)
    if "access_control_list" in data:
        body = {**body, "access_control_list": data["access_control_list"]}
    return jobs_api.create_job(with_body(request, body), api_version="2.0")


@api_view("POST")
def reset_job(request, data, api_version):
    new_settings = object_param(data, "new_settings", required=True)
    body = {**data, "new_settings": settings_from_2_0(new_settings)}
    return jobs_api.reset_job(with_body(request, body), api_version="2.0")


@api_view("POST")
def update_job(request, data, api_version):
    """A single-task job's task-level fields (`max_retries`, `new_cluster`, a `*_task`...) are
    its one task's: they are moved there before the 2.1 view merges the update."""
    job = jobs_api.find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.MANAGE)  # before its settings shape the answer
    new_settings, fields_to_remove = update_from_2_0(
        job.settings, object_param(data, "new_settings") or {}, str_list_param(data, "fields_to_remove") or [])
    body = {**data, "new_settings": new_settings}
    if "fields_to_remove" in data:
        body["fields_to_remove"] = fields_to_remove
    return jobs_api.update_job(with_body(request, body), api_version="2.0")


@api_view("POST")
def submit(request, data, api_version):
    return runs_api.submit(with_body(request, settings_from_2_0(data, name_field="run_name")), api_version="2.0")


@api_view("GET")
def get_job(request, data, api_version):
    job = answer_of(response := jobs_api.get_job(request, api_version="2.1"))
    if job is None:
        return response
    return {**job, "settings": settings_as_2_0(job["settings"])}


@api_view("GET")
def list_jobs(request, data, api_version):
    """Every job the caller may view, newest first: 2.0's jobs/list has no pages."""
    jobs = viewable_jobs(Job.objects.filter(kind=Job.Kind.JOB, deleted_at__isnull=True), request.user)
    jobs = jobs.select_related("creator", "current_version").order_by("-id")
    return {"jobs": [job_dict(job, settings_as_2_0(job.settings), with_run_as=False) for job in jobs],
            "has_more": False}


def single_task_run_ids(run_ids):
    runs = Run.objects.filter(id__in=run_ids).select_related("job_version")
    return {run.id for run in runs if run_is_single_task(run.job_version.settings, run.run_type)}


def shown_run(run, single_ids):
    """A run (or a task run in the run shape, which names its job run) as 2.0 shows it."""
    return run_as_2_0(run, single=run.get("job_run_id", run["run_id"]) in single_ids)


@api_view("GET")
def get_run(request, data, api_version):
    run = answer_of(response := runs_api.get_run(request, api_version="2.1"))
    if run is None:
        return response
    return shown_run(run, single_task_run_ids([run.get("job_run_id", run["run_id"])]))


@api_view("GET")
def list_runs(request, data, api_version):
    limit = int_param(data, "limit", default=20, low=0, high=1000)
    # The tasks array carries each run's task and cluster, which the single-task shape lifts.
    query = {"limit": min(limit or RUNS_PAGE, RUNS_PAGE), "expand_tasks": "true"}
    listed = answer_of(response := runs_api.list_runs(with_query(request, **query), api_version="2.1"))
    if listed is None:
        return response
    single = single_task_run_ids([run["run_id"] for run in listed.get("runs", [])])
    return {**listed, "runs": [shown_run(run, single) for run in listed.get("runs", [])]}


@api_view("GET")
def get_run_output(request, data, api_version):
    """A single-task run has its output under its own run_id in 2.0: that of its one task run."""
    run_id = id_param(data, "run_id")
    if run_id in single_task_run_ids([run_id]):
        attempt = TaskRun.objects.filter(run_id=run_id, is_current=True).order_by("-id").first()
        if attempt is not None:
            request = with_query(request, run_id=attempt.id)
    output = answer_of(response := runs_api.get_run_output(request, api_version="2.1"))
    if output is None or "metadata" not in output:
        return response
    metadata = output["metadata"]
    return {**output, "metadata": shown_run(metadata, single_task_run_ids([metadata.get("job_run_id")]))}


ENDPOINTS = [
    ("jobs/create", create_job),
    ("jobs/get", get_job),
    ("jobs/list", list_jobs),
    ("jobs/update", update_job),
    ("jobs/reset", reset_job),
    ("jobs/delete", pass_on(runs_api.delete_job)),
    ("jobs/run-now", runs_api.run_now),  # takes notebook_params, python_params... below 2.2
    ("jobs/runs/submit", submit),
    ("jobs/runs/get", get_run),
    ("jobs/runs/list", list_runs),
    ("jobs/runs/get-output", get_run_output),
    ("jobs/runs/cancel", pass_on(runs_api.cancel_run)),
    ("jobs/runs/cancel-all", pass_on(runs_api.cancel_all_runs)),
    ("jobs/runs/repair", pass_on(runs_api.repair_run)),
    ("jobs/runs/delete", pass_on(runs_api.delete_run)),
    ("jobs/runs/export", pass_on(runs_api.export_run)),
]
