"""Jobs API 2.2 and 2.1: jobs/create, get, list, update and reset.

jobs/delete and jobs/run-now act on runs: they are in api/runs.py. The API version only changes the queue default of a new job's settings and
whether jobs/get pages a job's arrays (2.2) or returns them whole (2.1).
"""

from django.db import transaction
from django.utils import timezone

from api.http import (
    list_page_body,
    api_view,
    bool_param,
    does_not_exist,
    id_param,
    int_param,
    invalid,
    keyset_page,
    next_object_page_token,
    object_page_number,
    object_param,
    slice_page,
    str_list_param,
    str_param,
)
from jobs.checks import check_settings_against_server
from jobs.models import Job
from jobs.permissions import check, grant_on_create, run_as_identity, viewable_jobs
from jobs.spec.access import Action
from jobs.spec.settings import INT32_MAX, SettingsInvalid, validate_job_settings, without_nulls
from jobs.spec.update import merge_update
from runs.job_completion import monitored_job_states
from runs.models import TriggerDecision, TriggerState

# The arrays of JobSettings that jobs/get (2.2) and jobs/list return 100 at a time.
PAGED_SETTINGS_ARRAYS = ("tasks", "job_clusters", "parameters", "environments")
# jobs/list leaves these out unless expand_tasks is set.
EXPANDED_ONLY = ("tasks", "job_clusters")


def find_job(job_id):
    """A job the API shows: not deleted, not the hidden job behind a runs/submit run."""
    job = (
        Job.objects.filter(id=job_id, kind=Job.Kind.JOB, deleted_at__isnull=True)
        .select_related("creator", "current_version")
        .first()
    )
    if job is None:
        raise does_not_exist("Job", job_id)
    return job


def to_ms(moment):
    return int(moment.timestamp() * 1000)


def job_dict(job, settings, *, with_run_as=True):
    """A Job (jobs/get); without run_as, a BaseJob (jobs/list), which has no run_as_user_name."""
    body = {"job_id": job.id, "created_time": to_ms(job.created_at), "settings": settings}
    creator = job.creator.get_username() if job.creator else None
    if creator:
        body["creator_user_name"] = creator
    run_as = run_as_identity(job, job.settings) if with_run_as else None
    if run_as is not None:  # a service principal's name is its application id
        body["run_as_user_name"] = run_as.get_username()
    if with_run_as:
        body.update(trigger_answers(job))
    return body


def trigger_answers(job):
    """trigger_state (the SDK's TriggerStateProto) for a schedule, trigger or continuous setting;
    trigger_details, one {state, history} per entry in triggers order, for a triggers list.
    Both always: include_trigger_state and include_trigger_history add nothing to ask for."""
    states = {state.position: state for state in TriggerState.objects.filter(job=job)}
    entries = job.settings.get("triggers")
    if not entries:
        return {"trigger_state": trigger_state_dict(states[0])} if 0 in states else {}
    return {"trigger_details": [{"state": per_trigger_state(states[i]), "history": trigger_history(job, i)}
                                if i in states else {} for i in range(len(entries))]}


def per_trigger_state(state):
    """The SDK's PerTriggerState: its kind's state under the kind's own name (table_update, not
    the legacy table), plus what our clock knows."""
    body = trigger_state_dict(state)
    if "table" in body:
        body["table_update"] = body.pop("table")
    if state.kind == TriggerState.Kind.SCHEDULE:
        body["schedule"] = {}
    elif state.kind == TriggerState.Kind.PERIODIC:
        body["periodic"] = {"next_run_time": to_ms(state.next_check_at) if state.next_check_at else 0}
    return body


# What each decision kind is in the SDK's TriggerHistory.
HISTORY = {"last_triggered": [TriggerDecision.Kind.FIRED],
           "last_not_triggered": [TriggerDecision.Kind.NOT_TRIGGERED, TriggerDecision.Kind.SKIPPED,
                                  TriggerDecision.Kind.REFUSED],
           "last_failed": [TriggerDecision.Kind.FAILED]}


def trigger_history(job, position):
    """The SDK's TriggerHistory: the latest decision of each kind, as TriggerEvaluations."""
    history = {}
    for name, kinds in HISTORY.items():
        decision = TriggerDecision.objects.filter(job=job, position=position, kind__in=kinds).order_by("-id").first()
        if decision is not None:
            history[name] = {"timestamp": to_ms(decision.at), "description": decision.reason,
                             **({"run_id": decision.run_id} if decision.run_id else {})}
    return history


def trigger_state_dict(state):
    """The SDK's TriggerStateProto, plus what our clock knows (times in epoch ms; 0 = never)."""
    body = {
        "pause_status": "PAUSED" if state.paused else "UNPAUSED",
        # Ours: when the clock looks next (a schedule's next slot), and what it last did.
        "next_check_time": to_ms(state.next_check_at) if state.next_check_at else 0,
        "last_fired_time": to_ms(state.last_fired_at) if state.last_fired_at else 0,
        "last_run_id": state.last_run_id or 0,
    }
    if state.last_error:
        body["last_error"] = state.last_error
    if state.kind == TriggerState.Kind.FILE_ARRIVAL:
        body["file_arrival"] = {"using_file_events": False, "files_seen": len(state.snapshot or {}),
                                "last_checked_time": to_ms(state.checked_at) if state.checked_at else 0}
    elif state.kind == TriggerState.Kind.TABLE_UPDATE:
        config = state.config.get("table_update") or state.config.get("table") or {}
        pending = {name.lower() for name in state.updated_tables or {}}
        body["table"] = {"using_scalable_monitoring": False, "last_seen_table_states": [
            {"table_name": name, "has_seen_updates": name.lower() in pending} for name in config.get("table_names") or []]}
    elif state.kind == TriggerState.Kind.CONTINUOUS:
        # The SDK's ContinuousTriggerState: the restart backoff after failed runs.
        backing_off = bool(state.failures and state.next_check_at and state.next_check_at > timezone.now())
        body["continuous"] = {"consecutive_failures": state.failures, "is_backing_off": backing_off,
                              "next_attempt_ms": to_ms(state.next_check_at) if state.next_check_at else 0}
    elif state.kind == TriggerState.Kind.JOB_COMPLETION:
        body["job_completion"] = {"monitored_job_states": monitored_job_states(state)}
    if state.config.get("sql_condition") is not None:
        body["sql_condition"] = state.condition_state or {}  # the SDK's SqlConditionState (+ our last value)
    return body


def settings_page(settings, page):
    """(settings with page `page` of each paged array, whether any array has a later page)."""
    paged, more = dict(settings), False
    for name in PAGED_SETTINGS_ARRAYS:
        if isinstance(settings.get(name), list):
            paged[name], has_more = slice_page(settings[name], page)
            more = more or has_more
    return paged, more


def settings_from_body(data):
    """A jobs/create body is JobSettings plus access_control_list."""
    return {key: value for key, value in data.items() if key != "access_control_list"}


def acl_param(data):
    entries = data.get("access_control_list") or []
    if not isinstance(entries, list):
        raise invalid("access_control_list must be a list")
    return entries


@api_view("POST")
def create_job(request, data, api_version):
    settings = check_settings_against_server(validate_job_settings(settings_from_body(data), api_version=api_version),
                                             user=request.user)
    with transaction.atomic():  # a refused access control list leaves no job behind
        job = Job(kind=Job.Kind.JOB, creator=request.user)
        job.save_version(settings, request.user)
        grant_on_create(job, request.user, acl_param(data))
    return {"job_id": job.id}


@api_view("GET")
def get_job(request, data, api_version):
    job = find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.VIEW)
    if api_version == "2.1":
        return job_dict(job, job.settings)
    page = object_page_number(data)
    settings, more = settings_page(job.settings, page)
    body = job_dict(job, settings)
    if more:
        body["next_page_token"] = next_object_page_token(page)
    return body


@api_view("GET")
def list_jobs(request, data, api_version):
    limit = int_param(data, "limit", default=20, low=1, high=100)
    offset = int_param(data, "offset", default=0, low=0, high=INT32_MAX)
    expand_tasks = bool_param(data, "expand_tasks")
    jobs = viewable_jobs(Job.objects.filter(kind=Job.Kind.JOB, deleted_at__isnull=True), request.user)
    jobs = jobs.select_related("creator", "current_version")
    name = str_param(data, "name")
    if name is not None:
        jobs = jobs.filter(name__iexact=name)
    rows, next_token, prev_token = keyset_page(jobs, limit=limit, page_token=str_param(data, "page_token"),
                                               offset=offset)
    listed = []
    for job in rows:
        if expand_tasks:
            settings, more = settings_page(job.settings, 0)
        else:
            settings = {k: v for k, v in job.settings.items() if k not in EXPANDED_ONLY}
            more = False
        item = job_dict(job, settings, with_run_as=False)
        if expand_tasks:
            item["has_more"] = more
        listed.append(item)
    return list_page_body("jobs", listed, next_token, prev_token)


@api_view("POST")
def update_job(request, data, api_version):
    job = find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.MANAGE)
    # Nulls are absent fields (as in create), not "remove this": that is fields_to_remove's job.
    new_settings = without_nulls(object_param(data, "new_settings") or {})
    fields_to_remove = str_list_param(data, "fields_to_remove") or []
    merged = merge_update(job.settings, new_settings, fields_to_remove)
    settings = validate_job_settings(merged, api_version=api_version)
    job.save_version(check_settings_against_server(settings, job, request.user), request.user)
    return {}


@api_view("POST")
def reset_job(request, data, api_version):
    job = find_job(id_param(data, "job_id"))
    check(request.user, job.id, Action.MANAGE)
    new_settings = object_param(data, "new_settings", required=True)
    settings = validate_job_settings(new_settings, api_version=api_version)
    job.save_version(check_settings_against_server(settings, job, request.user), request.user)
    return {}


@api_view("POST")
def validate_job(request, data, api_version):
    """Ours: every problem jobs/create would refuse `settings` for (with `job_id`, jobs/reset of
    that job), without saving anything. `lakeflow bundle validate` and `deploy` ask it first so a
    deploy stops before its first change."""
    settings = object_param(data, "settings", required=True)
    job = None
    if data.get("job_id") is not None:
        job = find_job(id_param(data, "job_id"))
        check(request.user, job.id, Action.MANAGE)
    try:
        check_settings_against_server(validate_job_settings(settings, api_version=api_version), job, request.user)
    except SettingsInvalid as exc:
        return {"problems": [{"path": p.path, "message": p.message} for p in exc.problems]}
    return {"problems": []}


def soft_delete_job(job, now=None):
    Job.objects.filter(id=job.id, deleted_at__isnull=True).update(deleted_at=now or timezone.now())
    TriggerState.objects.filter(job=job).delete()  # a deleted job's schedule never fires again

