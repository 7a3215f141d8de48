"""Ours: backfills, beside the Jobs API 2.2 and 2.1 (POST jobs/backfill, jobs/backfills/*).

A backfill runs a job once per slot of a past time range (backfills/planning.py says which
slots and what each run gets); its runs are ordinary runs with trigger BACKFILL. Times are epoch
milliseconds, as everywhere in the Jobs API. Making, canceling and repairing one needs
CAN_MANAGE_RUN on its job, like run-now; reading one needs CAN_VIEW.
"""

from django.utils import timezone

from api.http import (
    api_view,
    bool_param,
    client_errors,
    does_not_exist,
    id_param,
    int_param,
    invalid,
    keyset_page,
    list_page_body,
    object_param,
    str_param,
)
from api.jobs import find_job
from api.runs import MAX_EPOCH_MS, MAX_RUNS_PAGE, from_ms
from api.serializers import ms
from backfills.driving import BackfillRefused, ask_repairs, cancel_backfill
from backfills.models import Backfill
from backfills.planning import BackfillInvalid, BackfillRequest, create_backfill, plan_backfill
from backfills.status import progress_of, slot_rows
from jobs.models import Job
from jobs.permissions import check, viewable_jobs
from jobs.spec.access import Action
from runs.engine.parameters import effective_job_parameters, parameter_values


def find_backfill(backfill_id):
    backfill = Backfill.objects.select_related("job", "creator").filter(id=backfill_id).first()
    if backfill is None:
        raise does_not_exist("Backfill", backfill_id)
    return backfill


def request_of(data):
    """The body of jobs/backfill as a BackfillRequest (types here, meaning in planning)."""
    interval = object_param(data, "interval")
    job_parameters = object_param(data, "job_parameters") or {}
    for name, value in job_parameters.items():
        if not isinstance(value, str):
            raise invalid(f"job_parameters.{name}: must be a string, not {type(value).__name__}")
    return BackfillRequest(
        start_time=from_ms(int_param(data, "start_time", required=True, low=0, high=MAX_EPOCH_MS)),
        end_time=from_ms(int_param(data, "end_time", required=True, low=0, high=MAX_EPOCH_MS)),
        interval=interval,
        timezone_id=str_param(data, "timezone_id", max_length=100) or None,
        parameter=str_param(data, "parameter", max_length=200) or None,
        reprocess_policy=str_param(data, "reprocess_policy", default="ALL", max_length=20),
        order=str_param(data, "order", default="OLDEST_FIRST", max_length=20),
        max_concurrent_runs=int_param(data, "max_concurrent_runs"),
        job_parameters=job_parameters,
    )


@api_view("POST")
@client_errors(BackfillInvalid)
def create(request, data, api_version):
    job = find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.RUN)
    backfill_request = request_of(data)
    if bool_param(data, "dry_run"):
        plan = plan_backfill(job, backfill_request)
        definitions = job.settings.get("parameters") or []
        return {
            "dry_run": True,
            **({"parameter": plan.fill[0]} if plan.fill else {}),
            "runs": [{"slot_time": ms(slot),
                      "job_parameters": parameter_values(effective_job_parameters(definitions, overrides))}
                     for slot, overrides in plan.runs()],
        }
    backfill = create_backfill(job, backfill_request, user=request.user)
    return {"backfill_id": backfill.id}


def backfill_dict(backfill, *, with_slots):
    rows = slot_rows(backfill)
    body = {
        "backfill_id": backfill.id,
        "job_id": backfill.job_id,
        "created_time": ms(backfill.created_at),
        "start_time": ms(backfill.start_time),
        "end_time": ms(backfill.end_time),
        **backfill.cadence,
        "reprocess_policy": backfill.reprocess_policy,
        "order": backfill.order,
        "max_concurrent_runs": backfill.max_concurrent_runs,
        "job_parameters": backfill.job_parameters or {},
        "state": backfill.state,
        "state_message": backfill.state_message,
        "ended_time": ms(backfill.ended_at),
        "progress": progress_of(backfill, rows).as_dict(),
    }
    if backfill.creator is not None:
        body["creator_user_name"] = backfill.creator.get_username()
    if backfill.parameter:
        body["parameter"] = backfill.parameter
    if with_slots:
        body["slots"] = [slot_dict(row) for row in rows]
    return body


def slot_dict(row):
    item = {"slot_time": ms(row["slot"]), "state": row["state"].value}
    if row["run_id"] is not None:
        item["run_id"] = row["run_id"]
    if row["life_cycle_state"]:
        item["life_cycle_state"] = row["life_cycle_state"]
    if row["result_state"]:
        item["result_state"] = row["result_state"]
    return item


@api_view("GET")
def get(request, data, api_version):
    backfill = find_backfill(id_param(data, "backfill_id"))
    check(request.user, backfill.job_id, Action.VIEW)
    return backfill_dict(backfill, with_slots=True)


@api_view("GET")
def list_backfills(request, data, api_version):
    backfills = viewable_jobs(Backfill.objects.select_related("creator"), request.user, "job_id")
    job_id = id_param(data, "job_id", required=False)
    if job_id is not None:
        if not Job.objects.filter(id=job_id, kind=Job.Kind.JOB).exists():
            raise does_not_exist("Job", job_id)
        check(request.user, job_id, Action.VIEW)
        backfills = backfills.filter(job_id=job_id)
    limit = int_param(data, "limit", default=20, low=0, high=MAX_RUNS_PAGE) or MAX_RUNS_PAGE
    rows, next_token, prev_token = keyset_page(backfills, limit=limit, page_token=str_param(data, "page_token"))
    return list_page_body("backfills", [backfill_dict(b, with_slots=False) for b in rows], next_token, prev_token)


@api_view("POST")
@client_errors(BackfillRefused)
def cancel(request, data, api_version):
    backfill = find_backfill(id_param(data, "backfill_id"))
    check(request.user, backfill.job_id, Action.RUN)
    return {"canceled_run_ids": cancel_backfill(backfill, request.user, timezone.now())}


@api_view("POST")
@client_errors(BackfillRefused)
def repair_failed(request, data, api_version):
    backfill = find_backfill(id_param(data, "backfill_id"))
    check(request.user, backfill.job_id, Action.RUN)
    asked, refused = ask_repairs(backfill, request.user, timezone.now())
    return {"repaired_run_ids": asked, "refused": [{"run_id": run_id, "message": message} for run_id, message in refused]}
