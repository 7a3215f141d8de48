"""Lineage from what an attempt reported when it finished: the statements a sql_task ran
(parsed with sqlglot in the warehouse's dialect: lineage/sql.py), the tables a dbt_task's
manifest says its models read and wrote, and what the task declared with dbutils.lineage.record.
A reaction to the task.finished event (runs/reactions.py): the
attempt's end commits first, and a crash before this runs loses nothing (the sweep runs it).
OpenLineage events arrive while the task runs instead: lineage/openlineage.py."""

from django.db import transaction

from lineage.models import Direction, Source
from lineage.names import NameRefused, declared_dataset, table_dataset
from lineage.recording import record_accesses, record_columns, record_gap
from runs.models import TaskRun
from runs.reactions import reacts_to


def reported_data_access(event):
    return bool((event.data or {}).get("data_access"))


@reacts_to("task.finished", when=reported_data_access, atomic=False)
def capture_reported_lineage(event):
    """Parse first, then write in one short transaction: on SQLite a transaction holds the one
    write lock, and parsing a long SQL file there would stall every other writer. Writing twice
    records once (unique rows), so the reaction may run again after a crash."""
    attempt = TaskRun.objects.select_related("run").filter(id=event.task_run_id).first()
    if attempt is None or not attempt.data_access:
        return
    report = attempt.data_access
    found = sql_lineage(report["sql"]) if report.get("sql") else None
    with transaction.atomic():
        if found is not None:
            record_sql(attempt, found, event.at)
        if report.get("declared"):
            record_declared(attempt, report["declared"], event.at)
        if report.get("dbt"):
            record_dbt(attempt, report["dbt"], event.at)


def sql_lineage(ran):
    # Imported here: lineage.sql brings sqlglot (about 15 MB), which an idle process need not carry.
    from lineage.sql import attempt_lineage

    return attempt_lineage(ran.get("statements") or [], warehouse_id=ran["warehouse_id"], dialect=ran["dialect"],
                           schema=ran.get("schema") or None, row_counts=ran.get("row_counts") or None)


def record_sql(attempt, found, now):
    written_columns = {}
    for target, column, _, _ in found.columns:
        written_columns.setdefault(target, set()).add(column)
    accesses = [(table_dataset(name), Direction.READ, None, None) for name in found.reads]
    accesses += [(table_dataset(name), Direction.WRITE, sorted(written_columns.get(name, ())) or None,
                  found.row_counts.get(name)) for name in found.writes]
    record_accesses(attempt, accesses, Source.SQL, now)
    record_columns(attempt, [(table_dataset(target), target_column, table_dataset(source), source_column)
                             for target, target_column, source, source_column in found.columns], now)
    for reason in found.unknown:
        record_gap(attempt, reason, now)


def record_dbt(attempt, ran, now):
    """What a dbt_task's models read and wrote (views too: datasets for lineage, not trigger writes)."""
    accesses = [(table_dataset(name), Direction.READ, None, None) for name in ran.get("reads") or []]
    accesses += [(table_dataset(name), Direction.WRITE, None, None)
                 for name in [*(ran.get("writes") or []), *(ran.get("views") or [])]]
    record_accesses(attempt, accesses, Source.DBT, now)


def record_declared(attempt, declared, now):
    accesses = []
    for entry in declared:
        for direction, key in ((Direction.READ, "reads"), (Direction.WRITE, "writes")):
            for text in entry.get(key) or []:
                try:
                    accesses.append((declared_dataset(text), direction, None, None))
                except NameRefused as exc:
                    record_gap(attempt, f"dbutils.lineage.record: {exc}", now)
    record_accesses(attempt, accesses, Source.DECLARED, now)
