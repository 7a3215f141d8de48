"""Lineage over HTTP, in the shapes users already have:

- ``POST /api/v1/lineage``: OpenLineage RunEvents in (Marquez's endpoint; the stock client posts
  here), with the attempt credential a task process has, or an API token;
- ``GET /api/2.0/lineage-tracking/table-lineage`` and ``.../column-lineage``: Databricks'
  lineage REST API (``catalog_name`` is the warehouse id);
- ``GET /api/2.0/lineage-tracking/system/table_lineage`` and ``.../column_lineage`` (ours): rows
  shaped like ``system.access.table_lineage`` / ``column_lineage``, newest first, paged.
"""

from django.db.models import Q
from django.utils import timezone

from api.http import (
    ApiError,
    api_view,
    authenticate,
    bool_param,
    client_errors,
    decode_page_token,
    encode_page_token,
    int_param,
    str_param,
)
from jobs.models import Job
from jobs.permissions import check, viewable_jobs
from jobs.spec.access import Action
from lineage.models import Access, ColumnEdge, Dataset, Direction, Edge
from lineage.openlineage import EventRefused, attempt_named_by, ingest
from runs.attempt_credentials import attempt_of_credential
from runs.models import TaskRun

MAX_ROWS_PAGE = 1000


def attempt_or_user(request):
    """An attempt's credential (its process posts its own lineage), else the usual API auth."""
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    attempt_id = attempt_of_credential(raw.strip()) if scheme.lower() == "bearer" else None
    request.lineage_attempt_id = attempt_id
    if attempt_id is not None:
        request.audit_credential = f"OpenLineage credential of task run {attempt_id}"
        return None
    return authenticate(request)


@api_view("POST", authenticator=attempt_or_user)
@client_errors(EventRefused)
def openlineage_events(request, data):
    attempt_id = request.lineage_attempt_id
    if attempt_id is None:
        attempt_id = attempt_named_by(data)
        job_id = TaskRun.objects.filter(id=attempt_id).values_list("run__job_id", flat=True).first() if attempt_id else None
        if job_id is not None:  # lineage of a job's run is written by those who may run the job
            check(request.user, job_id, Action.RUN)
    return {"recorded_datasets": ingest(data, attempt_id=attempt_id, now=timezone.now())}


# --- Databricks' lineage-tracking API ------------------------------------------------------------


def _table(data, name="table_name"):
    text = str_param(data, name, required=True).strip().lower()
    if text.count(".") != 2:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{name} must be <catalog>.<schema>.<table>, "
                                                       "the catalog being the warehouse id")
    dataset = Dataset.objects.filter(name=text, kind=Dataset.Kind.TABLE).first()
    if dataset is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Table {text} has no lineage here")
    return dataset


def table_info(dataset, at):
    catalog, schema, name = dataset.name.split(".", 2) if dataset.kind == "TABLE" else ("", "", dataset.name)
    return {"name": name, "catalog_name": catalog, "schema_name": schema, "table_type": "TABLE",
            "lineage_timestamp": at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z" if at else None}


def _neighbours(dataset, direction, user):
    """[(other dataset, {job_id: newest}, newest)] one step away: upstream are the tables that a
    task read and that task wrote `dataset`; downstream the reverse."""
    mine, theirs = (Direction.WRITE, Direction.READ) if direction == "upstream" else (Direction.READ, Direction.WRITE)
    found = {}
    mine_by_task = {(a.job_id, a.task_key): a for a in
                    Access.objects.filter(dataset=dataset, direction=mine).exclude(task_key="")}
    visible = set(viewable_jobs(Job.objects.filter(id__in={job for job, _ in mine_by_task}), user)
                  .values_list("id", flat=True))
    others = (Access.objects.filter(direction=theirs, job_id__in=visible)
              .exclude(dataset=dataset).select_related("dataset"))  # one query, not one per task
    for other in others:
        access = mine_by_task.get((other.job_id, other.task_key))
        if access is None:
            continue
        at = max(access.last_at, other.last_at)
        entry = found.setdefault(other.dataset_id, [other.dataset, {}, at])
        entry[1][access.job_id] = max(at, entry[1].get(access.job_id, at))
        entry[2] = max(entry[2], at)
    return sorted(found.values(), key=lambda entry: entry[0].name)


@api_view("GET")
def table_lineage(request, data):
    dataset = _table(data)
    with_jobs = bool_param(data, "include_entity_lineage", default=False)
    body = {}
    for key, direction in (("upstreams", "upstream"), ("downstreams", "downstream")):
        entries = []
        for other, jobs, at in _neighbours(dataset, direction, request.user):
            if other.kind != "TABLE":
                entry = {"fileInfo": {"path": other.name, "lineage_timestamp": table_info(other, at)["lineage_timestamp"]}}
            else:
                entry = {"tableInfo": table_info(other, at)}
            if with_jobs:
                entry["jobInfos"] = [{"job_id": job_id, "workspace_id": 0} for job_id in sorted(jobs)]
            entries.append(entry)
        body[key] = entries
    return body


@api_view("GET")
def column_lineage(request, data):
    dataset = _table(data)
    column = str_param(data, "column_name", required=True)
    body = {}
    for key, mine, theirs in (("upstream_cols", "target", "source"), ("downstream_cols", "source", "target")):
        rows = (ColumnEdge.objects.filter(**{mine: dataset, f"{mine}_column": column})
                .values_list(f"{theirs}__name", f"{theirs}_column").order_by().distinct())
        body[key] = []
        for name, other_column in sorted(rows):
            catalog, schema, table = (name.split(".", 2) + ["", ""])[:3]
            body[key].append({"name": other_column, "catalog_name": catalog, "schema_name": schema,
                              "table_name": table})
    return body


# --- system-table rows (ours) ----------------------------------------------------------------------


def _system_page(data, queryset):
    limit = int_param(data, "limit", default=100, low=1, high=MAX_ROWS_PAGE)
    if token := str_param(data, "page_token"):
        queryset = queryset.filter(id__lt=decode_page_token(token, "before_row")["before_row"])
    rows = list(queryset.order_by("-id")[:limit + 1])
    more = len(rows) > limit
    return rows[:limit], (encode_page_token({"before_row": rows[limit - 1].id}) if more else None)


def _visible(queryset, user):
    """Rows of jobs the caller may view, and those of no job (OpenLineage events from outside)."""
    return queryset.filter(Q(job_id__isnull=True) | Q(job_id__in=viewable_jobs(Job.objects.all(), user).values("id")))


def _filtered(data, queryset, dataset_fields):
    if job_id := int_param(data, "job_id"):
        queryset = queryset.filter(job_id=job_id)
    if run_id := int_param(data, "run_id"):
        queryset = queryset.filter(run_id=run_id)
    if name := str_param(data, "table_name"):
        ids = list(Dataset.objects.filter(name=name.strip().lower()).values_list("id", flat=True))
        match = Q()
        for field_name in dataset_fields:
            match |= Q(**{f"{field_name}__in": ids})
        queryset = queryset.filter(match)
    return queryset


def _user_name(run):
    return run.creator.username if run.creator_id else None


@api_view("GET")
def system_table_lineage(request, data):
    """One row per edge: a read is a source, a write a target (system.access.table_lineage)."""
    edges = _visible(Edge.objects.select_related("dataset", "run__creator"), request.user)
    edges, token = _system_page(data, _filtered(data, edges, ["dataset"]))
    rows = []
    for edge in edges:
        side = "source" if edge.direction == Direction.READ else "target"
        other = "target" if side == "source" else "source"
        rows.append({f"{side}_table_full_name": edge.dataset.name if edge.dataset.kind == "TABLE" else None,
                     f"{side}_path": edge.dataset.name if edge.dataset.kind == "PATH" else None,
                     f"{side}_type": edge.dataset.kind, f"{other}_table_full_name": None, f"{other}_type": None,
                     "entity_type": "JOB", "entity_id": str(edge.job_id) if edge.job_id else None,
                     "entity_run_id": str(edge.run_id), "task_key": edge.task_key, "capture": edge.source,
                     "created_by": _user_name(edge.run),
                     "event_time": edge.at.isoformat(), "event_date": edge.at.date().isoformat(),
                     "workspace_id": "0"})
    return {"rows": rows, **({"next_page_token": token} if token else {})}


@api_view("GET")
def system_column_lineage(request, data):
    edges = _visible(ColumnEdge.objects.select_related("source", "target", "run__creator"), request.user)
    edges, token = _system_page(data, _filtered(data, edges, ["source", "target"]))
    return {"rows": [{"source_table_full_name": edge.source.name, "source_column_name": edge.source_column,
                      "source_type": edge.source.kind, "target_table_full_name": edge.target.name,
                      "target_column_name": edge.target_column, "target_type": edge.target.kind,
                      "entity_type": "JOB", "entity_id": str(edge.job_id) if edge.job_id else None,
                      "entity_run_id": str(edge.run_id), "created_by": _user_name(edge.run),
                      "event_time": edge.at.isoformat(), "event_date": edge.at.date().isoformat(), "workspace_id": "0"} for edge in edges],
            **({"next_page_token": token} if token else {})}

