"""What a task attempt's process may show the server to speak for that attempt, and the ids
OpenLineage knows it by.

Each attempt's process gets a credential (signed with SECRET_KEY, naming the attempt) in
``OPENLINEAGE_API_KEY``: the stock OpenLineage client sends it as a Bearer token, and the
lineage app (POST /api/v1/lineage) takes it as "this event belongs to attempt N". It lets the
task post lineage for its own attempt, nothing else; it is refused once the attempt ended long ago.

OpenLineage wants a UUID per run: an attempt's (and a job run's) is this instance's fixed prefix
and the id, so a client that only has an API token can still name the attempt in its parent facet.
"""

import uuid

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "lakeflow.attempt-credential"
_PREFIX = "attempt-"
# 8-4-4-4-12: a version-4-looking prefix; the last group carries the id (job runs: variant 9).
_ATTEMPT_UUID = "6c616b65-666c-4f77-8{kind}00-{id:012x}"
NAMESPACE = "lakeflow"
"""The OpenLineage namespace of this server's jobs, and of datasets named <warehouse>.<schema>.<table>."""


def attempt_credential(attempt_id):
    return signing.Signer(salt=_SALT).sign(f"{_PREFIX}{attempt_id}")


def attempt_of_credential(token):
    """The attempt id a credential names, or None if it is not one of ours (or was tampered with)."""
    if not token.startswith(_PREFIX):
        return None
    try:
        value = signing.Signer(salt=_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return int(value[len(_PREFIX):])


def openlineage_run_id(attempt_id):
    return _ATTEMPT_UUID.format(kind="0", id=attempt_id)


def job_run_openlineage_id(run_id):
    return _ATTEMPT_UUID.format(kind="9", id=run_id)


def attempt_of_openlineage_run_id(value):
    """The attempt id of one of our attempt run ids, else None."""
    try:
        text = str(uuid.UUID(str(value)))
    except ValueError:
        return None
    head, _, tail = text.rpartition("-")
    return int(tail, 16) if head == _ATTEMPT_UUID.format(kind="0", id=0).rpartition("-")[0] else None


def openlineage_environment(attempt):
    """The standard OpenLineage variables for one attempt's process: the stock client (and dbt-ol,
    Spark's listener) sends its events here, for this attempt, under its job run as parent."""
    task_job = f"job_{attempt.run.job_id}.{attempt.task_key}"
    return {
        "OPENLINEAGE_URL": settings.LAKEFLOW_BASE_URL,
        "OPENLINEAGE_API_KEY": attempt_credential(attempt.id),
        "OPENLINEAGE_NAMESPACE": NAMESPACE,
        "OPENLINEAGE_PARENT_ID": f"{NAMESPACE}/{task_job}/{openlineage_run_id(attempt.id)}",
        "OPENLINEAGE_ROOT_PARENT_ID": f"{NAMESPACE}/job_{attempt.run.job_id}/{job_run_openlineage_id(attempt.run_id)}",
    }


# --- the run-as token: what WorkspaceClient() inside a task authenticates with ------------------

_RUN_AS_SALT = "lakeflow.run-as-token"
_RUN_AS_PREFIX = "runas-"
RUN_AS_TOKEN_MAX_AGE = 7 * 24 * 3600  # a bound even for an attempt that somehow never ends


def run_as_token(attempt_id):
    """A token that acts as the attempt's run-as identity while the attempt runs, and never after:
    short-lived by construction, with no row to write or revoke."""
    return signing.TimestampSigner(salt=_RUN_AS_SALT).sign(f"{_RUN_AS_PREFIX}{attempt_id}")


def attempt_of_run_as_token(token):
    if not token.startswith(_RUN_AS_PREFIX):
        return None
    try:
        value = signing.TimestampSigner(salt=_RUN_AS_SALT).unsign(token, max_age=RUN_AS_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    return int(value[len(_RUN_AS_PREFIX):])


def databricks_environment(attempt):
    """DATABRICKS_HOST and DATABRICKS_TOKEN for the attempt's process: the SDK's default auth
    inside task code then talks to this server as the run's run-as identity."""
    if attempt.run.run_as_id is None or not settings.LAKEFLOW_TASK_RUN_AS_TOKEN:
        return {}
    return {"DATABRICKS_HOST": settings.LAKEFLOW_BASE_URL, "DATABRICKS_TOKEN": run_as_token(attempt.id)}


# --- the secrets credential: what dbutils.secrets inside a task authenticates with ---------------

_SECRETS_SALT = "lakeflow.secrets-credential"
_SECRETS_PREFIX = "secrets-"
SECRETS_URL_ENV = "LAKEFLOW_SECRETS_URL"
SECRETS_TOKEN_ENV = "LAKEFLOW_SECRETS_TOKEN"
SECRETS_SWITCH_ENV = "LAKEFLOW_TASK_SECRETS"  # "false" in a task: dbutils.secrets says it is turned off


def secrets_credential(attempt_id):
    """A credential that only reads secrets (the ones the run-as identity may READ) while the
    attempt runs. Its own salt: the OpenLineage key, which task code may send elsewhere by pointing
    OPENLINEAGE_URL away, reads no secret; and its own switch, LAKEFLOW_TASK_SECRETS."""
    return signing.TimestampSigner(salt=_SECRETS_SALT).sign(f"{_SECRETS_PREFIX}{attempt_id}")


def attempt_of_secrets_credential(token):
    if not token.startswith(_SECRETS_PREFIX):
        return None
    try:
        value = signing.TimestampSigner(salt=_SECRETS_SALT).unsign(token, max_age=RUN_AS_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return int(value[len(_SECRETS_PREFIX):])


def secrets_environment(attempt):
    """Where and how dbutils.secrets (runs/executors/dbutils_secrets.py) fetches secrets. Tasks of
    other jobs under the same OS user can read it from the process's environment, as they can the
    run-as token: LAKEFLOW_TASK_SECRETS=false gives tasks none."""
    if not settings.LAKEFLOW_TASK_SECRETS:
        return {SECRETS_SWITCH_ENV: "false"}
    if attempt.run.run_as_id is None:
        return {}
    return {SECRETS_URL_ENV: settings.LAKEFLOW_BASE_URL, SECRETS_TOKEN_ENV: secrets_credential(attempt.id)}


# --- the system tables credential: what a SQL task's queries of system.* tables send -------------

_SYSTEM_TABLES_SALT = "lakeflow.system-tables-credential"
_SYSTEM_TABLES_PREFIX = "systables-"


def system_tables_credential(attempt_id):
    """A credential that only queries the system tables, as the run's run-as identity sees them,
    while the attempt runs (system_tables/api.py): the SQL task's process never holds our database's
    location or password, and a task user that cannot read LAKEFLOW_HOME still gets its answers."""
    return signing.TimestampSigner(salt=_SYSTEM_TABLES_SALT).sign(f"{_SYSTEM_TABLES_PREFIX}{attempt_id}")


def attempt_of_system_tables_credential(token):
    if not token.startswith(_SYSTEM_TABLES_PREFIX):
        return None
    try:
        value = signing.TimestampSigner(salt=_SYSTEM_TABLES_SALT).unsign(token, max_age=RUN_AS_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return int(value[len(_SYSTEM_TABLES_PREFIX):])


def system_tables_access(attempt):
    """Where and how an attempt's SQL statements over system tables are answered (the launch spec
    carries it to runs/executors/sql.py); None for a run without a run-as identity."""
    if attempt.run.run_as_id is None:
        return None
    return {"url": settings.LAKEFLOW_BASE_URL + reverse("system_tables:statements"),
            "token": system_tables_credential(attempt.id)}
