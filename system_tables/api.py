"""``POST /sql/statements`` (our extension): one query of the system tables, answered as JSON.

What a SQL task's statements over ``system.*`` tables call (runs/executors/sql.py) with its
attempt's system-tables credential: they see what the run's run-as identity's own grants show,
while the attempt runs. Never as an admin, even for an admin's job, like the task's run-as token:
other tasks running under the same operating-system user can read the credential from the task's
spec.json (README, "Who can do what"). Any API caller may use it too, with a token or a signed-in
session, seeing what that caller may see.

Body: ``{"statement": "SELECT ...", "parameters": {"name": "value"}, "max_rows": 1000}``
(``:name`` or ``$name`` markers; values are strings, as a sql_task's parameters). Answer:
``{"columns": [{"name", "type"}], "rows": [[...]], "row_count", "truncated", "duration_ms"}``
with values as JSON (times ISO 8601, decimals as strings); a refused or failing query is 400
INVALID_PARAMETER_VALUE with DuckDB's message.
"""

from django.conf import settings

from api.http import ApiError, api_view, authenticate, int_param, invalid, object_param, str_param
from runs.attempt_credentials import attempt_of_system_tables_credential
from runs.executors.sql import json_safe
from runs.executors.system_statements import MAX_QUERY_CHARACTERS
from runs.run_as import user_of_running_attempt
from system_tables.queries import QueryFailed, open_for, run_on, scope_for


def bearer(request):
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else ""


def authenticate_querier(request):
    """A task's system-tables credential (its run-as identity, acting for a task: never an admin),
    or whatever the API takes (api.http.authenticate)."""
    raw = bearer(request)
    attempt_id = attempt_of_system_tables_credential(raw) if raw else None
    if attempt_id is None:
        user = authenticate(request)
        request.system_tables_scope = scope_for(user)
        return user
    user = user_of_running_attempt(attempt_id)
    if user is None:
        raise ApiError(401, "UNAUTHENTICATED", "This task's system tables credential is no longer valid: "
                                               "its attempt has ended")
    request.audit_credential = "system tables credential of a task"
    request.system_tables_scope = scope_for(user)
    return user


def parameters_of(data):
    parameters = object_param(data, "parameters") or {}
    for name, value in parameters.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise invalid(f"parameters.{name} must be a string")
    return {str(name): str(value) for name, value in parameters.items()}


@api_view("POST", authenticator=authenticate_querier)
def statements(request, data):
    statement = str_param(data, "statement", required=True, max_length=MAX_QUERY_CHARACTERS)
    limit = settings.LAKEFLOW_SYSTEM_TABLES_MAX_ROWS
    max_rows = int_param(data, "max_rows", default=limit, low=0, high=limit)
    parameters = parameters_of(data)
    try:
        with open_for(request.system_tables_scope) as cursor:
            answer = run_on(cursor, statement, params=parameters, max_rows=max_rows)
    except QueryFailed as exc:
        raise invalid(str(exc)) from None
    return {"columns": [{"name": name, "type": kind} for name, kind in zip(answer.columns, answer.types)],
            "rows": [[json_safe(value) for value in row] for row in answer.rows],
            "row_count": answer.total, "truncated": answer.truncated, "duration_ms": answer.duration_ms}
