"""OpenLineage in: the RunEvents task code sends to POST /api/v1/lineage (the HTTP transport
endpoint Marquez serves, which the stock openlineage-python client, dbt-ol and Spark's listener
post to), turned into edges of the attempt they belong to.

Which attempt: the attempt credential the event came with (each task process gets one in
OPENLINEAGE_API_KEY), or, with an API token, our attempt run id as the event's run id or its
parent's. An event for an attempt that ended more than LATE_AFTER ago is refused: lineage of a
run is settled once its page has been read for a while. Inputs and outputs become read and write
edges (source ``openlineage``), their ``columnLineage`` facet column edges, an output's
``outputStatistics.rowCount`` its row count.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from lineage.models import Direction, Source
from lineage.names import NameRefused, openlineage_dataset
from lineage.recording import record_accesses, record_columns, record_gap
from runs.attempt_credentials import attempt_of_openlineage_run_id
from runs.models import TaskRun

LATE_AFTER = timedelta(hours=1)
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")


class EventRefused(ValueError):
    def __init__(self, message, code="INVALID_PARAMETER_VALUE"):
        super().__init__(message)
        self.error_code = code


def _field(data, path, kind, required=True):
    value = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        if required:
            raise EventRefused(f"OpenLineage event field {path} is required")
        return None
    if not isinstance(value, kind):
        raise EventRefused(f"OpenLineage event field {path} must be {_kind_name(kind)}")
    return value


def _kind_name(kind):
    return {str: "a string", list: "an array", dict: "an object"}.get(kind, kind.__name__)


def attempt_named_by(event):
    """The attempt an event names by its run id or its parent's (API token callers), or None."""
    for path in ("run.runId", "run.facets.parent.run.runId", "run.facets.parent.root.run.runId"):
        value = _field(event, path, str, required=False)
        attempt_id = attempt_of_openlineage_run_id(value) if value else None
        if attempt_id is not None:
            return attempt_id
    return None


@transaction.atomic  # a refused event records nothing, not even the gaps found before the refusal
def ingest(event, *, attempt_id, now):
    """Check one RunEvent and record its datasets for the attempt; returns how many it recorded.
    EventRefused says what is wrong (the API answers it as 400)."""
    _field(event, "eventTime", str)
    _field(event, "producer", str)
    _field(event, "run.runId", str)
    _field(event, "job.namespace", str)
    _field(event, "job.name", str)
    event_type = _field(event, "eventType", str, required=False)
    if event_type is not None and event_type not in EVENT_TYPES:
        raise EventRefused(f"OpenLineage event field eventType must be one of {', '.join(EVENT_TYPES)}")
    sides = [(key, direction, _field(event, key, list, required=False) or [])
             for key, direction in (("inputs", Direction.READ), ("outputs", Direction.WRITE))]
    if attempt_id is None:
        raise EventRefused("This event names no task attempt of this server: send it with the attempt's "
                           "OPENLINEAGE_API_KEY, or name the attempt's run id (OPENLINEAGE_PARENT_ID) as parent")
    attempt = TaskRun.objects.select_related("run").filter(id=attempt_id).first()
    if attempt is None:
        raise EventRefused(f"Task attempt {attempt_id} does not exist", "RESOURCE_DOES_NOT_EXIST")
    if attempt.ended_at is not None and now - attempt.ended_at > LATE_AFTER:
        raise EventRefused(f"Task attempt {attempt_id} ended at {attempt.ended_at:%Y-%m-%d %H:%M:%S} UTC, more than "
                           f"{int(LATE_AFTER.total_seconds() // 60)} minutes ago: its lineage is closed", "INVALID_STATE")
    accesses, columns = [], []
    for key, direction, datasets in sides:
        for index, dataset in enumerate(datasets):
            where = f"{key}[{index}]"
            if not isinstance(dataset, dict):
                raise EventRefused(f"OpenLineage event field {where} must be an object")
            namespace, name = _field(dataset, "namespace", str), _field(dataset, "name", str)
            try:
                found = openlineage_dataset(namespace, name, settings.LAKEFLOW_WAREHOUSES)
            except NameRefused as exc:
                record_gap(attempt, f"OpenLineage {where}: {exc}", now)
                continue
            fields = (_field(dataset, "facets.schema.fields", list, required=False) or [])
            names = [f["name"] for f in fields if isinstance(f, dict) and isinstance(f.get("name"), str)] or None
            rows = _field(dataset, "outputFacets.outputStatistics.rowCount", int, required=False)
            accesses.append((found, direction, names, rows if direction == Direction.WRITE else None))
            if direction == Direction.WRITE:
                columns += _column_links(attempt, found, dataset, where, now)
    record_accesses(attempt, accesses, Source.OPENLINEAGE, now)
    record_columns(attempt, columns, now)
    return len(accesses)


def _column_links(attempt, target, dataset, where, now):
    facet = _field(dataset, "facets.columnLineage.fields", dict, required=False) or {}
    links = []
    for column, spec in facet.items():
        for source in (spec or {}).get("inputFields") or [] if isinstance(spec, dict) else []:
            try:
                found = openlineage_dataset(str(source.get("namespace", "")), str(source.get("name", "")),
                                            settings.LAKEFLOW_WAREHOUSES)
            except (NameRefused, AttributeError) as exc:
                record_gap(attempt, f"OpenLineage {where}.facets.columnLineage.{column}: {exc}", now)
                continue
            if isinstance(source.get("field"), str):
                links.append((target, column, found, source["field"]))
    return links
