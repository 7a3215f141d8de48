"""The Query history page: a SQL editor over the system tables, their columns beside it, the
answer as a table (the first rows shown, all of them counted), a CSV download of the whole answer,
and the viewer's own history of queries (click one to run it again).

Queries run on GET (``/sql/?sql=...``): they read only, so a query is a link to share or bookmark,
and the audit log (which records state-changing requests) is not filled with them. Running one
adds a row to the viewer's history.
"""

import contextlib
import csv
import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from jobs.query_params import query_int
from runs.executors.sql import json_safe
from runs.executors.system_statements import MAX_QUERY_CHARACTERS
from runs.executors.system_views import TABLES, view_name
from system_tables.models import QueryRecord
from system_tables.queries import QueryFailed, open_for, run_on, scope_for, stream_on

SHOWN_ROWS = 1000
HISTORY = 50
EXAMPLE = """SELECT job_id, count(*) AS runs, round(avg(run_duration_seconds), 1) AS avg_seconds
FROM system.lakeflow.job_run_timeline
WHERE result_state IS NOT NULL AND period_start_time >= now() - INTERVAL 7 DAYS
GROUP BY job_id
ORDER BY runs DESC
LIMIT 20"""

_columns = {}  # view -> [(column, type)]: the same for every identity, read once per process


def query_text(request):
    """The query to run: ``sql``, or the text of one of the viewer's own history rows (``record``)."""
    record_id = query_int(request, "record")
    if record_id is not None:
        record = QueryRecord.objects.filter(id=record_id, user=request.user).first()
        if record is None:
            raise Http404("No such query in your history")
        return record.text
    text = request.GET.get("sql", "")
    if len(text) > MAX_QUERY_CHARACTERS:
        raise BadRequest(f"The query parameter sql is longer than {MAX_QUERY_CHARACTERS:,} characters")
    return text


@login_required
def query_page(request):
    text = query_text(request)
    answer, error, record = None, "", None
    if text.strip():
        try:
            with open_for(scope_for(request.user)) as cursor:
                answer = run_on(cursor, text, keep_rows=SHOWN_ROWS)
        except QueryFailed as exc:
            error = str(exc)
        record = QueryRecord.objects.create(
            user=request.user, text=text, error=error,
            duration_ms=answer.duration_ms if answer else None,
            rows=answer.total if answer else None, truncated=bool(answer and answer.truncated))
    history = QueryRecord.objects.filter(user=request.user).order_by("-id")[:HISTORY]
    return render(request, "system_tables/query.html", {
        "nav": "sql", "text": text or EXAMPLE, "ran": bool(text.strip()), "answer": answer, "error": error,
        "record": record, "headers": list(zip(answer.columns, answer.types)) if answer else [],
        "cells": [[cell(value) for value in row] for row in answer.rows] if answer else [],
        "tables": tables(request.user), "history": history, "shown_rows": SHOWN_ROWS,
        "max_rows": settings.LAKEFLOW_SYSTEM_TABLES_MAX_ROWS,
        "csv_url": f"{reverse('system_tables:csv')}?{urlencode({'record': record.id})}" if answer else "",
    }, status=400 if error else 200)


def cell(value):
    """(text, kind) of one value for the table: kind "null", "number" or "" (text, JSON)."""
    if value is None:
        return "NULL", "null"
    if isinstance(value, bool):
        return str(value).lower(), ""
    if isinstance(value, (int, float)):
        return str(json_safe(value)), "number"
    safe = json_safe(value)
    return (safe if isinstance(safe, str) else json.dumps(safe, ensure_ascii=False)), ""


def tables(user):
    """[(table, description, [(column, type)])] for the list beside the editor."""
    if not _columns:
        try:
            with open_for(scope_for(user)) as cursor:
                for table in TABLES:
                    cursor.execute(f"DESCRIBE {view_name(table)}")
                    _columns[table] = [(row[0], row[1]) for row in cursor.fetchall()]
        except Exception:  # the page still works without the list; a query says what is wrong
            return [(table, about, []) for table, about in TABLES.items()]
    return [(table, about, _columns.get(table, [])) for table, about in TABLES.items()]


class _Line:
    """What csv.writer writes to: each row comes back as its text."""

    def write(self, text):
        return text


@login_required
def csv_download(request):
    """The whole answer (up to LAKEFLOW_SYSTEM_TABLES_MAX_ROWS rows) as CSV, read as it streams
    out; the query runs again now, so the file is current."""
    text = query_text(request)
    if not text.strip():
        raise BadRequest("The query parameter sql (or record) is required")
    stack = contextlib.ExitStack()  # the cursor stays open while the rows stream out
    try:
        columns, rows = stream_on(stack.enter_context(open_for(scope_for(request.user))), text)
    except QueryFailed as exc:
        stack.close()
        return render(request, "system_tables/csv_error.html", {"nav": "sql", "error": str(exc), "text": text},
                      status=400)
    writer = csv.writer(_Line())

    def lines():
        try:
            yield writer.writerow(columns)
            for row in rows:
                yield writer.writerow([csv_value(value) for value in row])
        finally:
            stack.close()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="query.csv"'
    return response


# A text cell a spreadsheet would run as a formula (a job name "=HYPERLINK(...)" written by
# someone else): prefixed with an apostrophe, OWASP's advice for CSV files.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_value(value):
    if value is None:
        return ""
    safe = json_safe(value)
    if isinstance(safe, str):
        return "'" + safe if safe.startswith(FORMULA_START) else safe
    return safe if isinstance(safe, (int, float)) else json.dumps(safe, ensure_ascii=False)
