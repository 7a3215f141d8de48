"""Issue 16, secrets, on a real `serve` with the official SDK: `w.secrets` makes a scope, puts,
lists, reads and grants; `manage.py secrets put` adds one from stdin; a job's Python task reads
the secret with `databricks.sdk.runtime`'s dbutils (the run-as token switched off: the attempt's
secrets credential is enough), and the log served by runs/get-output and runs/export shows
[REDACTED] where the task printed the value."""

import base64
import hashlib
import os
import subprocess
import textwrap
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service import jobs, workspace

from tests.e2e.conftest import PYTHON, ROOT, drop_database, start_scaleout, start_serve

pytestmark = pytest.mark.e2e

WAIT = timedelta(minutes=3)
TASK = """
    import hashlib, os
    from databricks.sdk.runtime import dbutils

    value = dbutils.secrets.get("e2e", "api-key")
    print("value:", value, flush=True)
    print("sha:", hashlib.sha256(value.encode()).hexdigest())
    print("bytes sha:", hashlib.sha256(dbutils.secrets.getBytes("e2e", "from-cli")).hexdigest())
    print("keys:", [m.key for m in dbutils.secrets.list("e2e")])
    print("scopes:", [s.name for s in dbutils.secrets.listScopes()])
    print("run-as token:", "DATABRICKS_TOKEN" in os.environ)
    try:
        dbutils.secrets.get("e2e", "missing")
    except KeyError as exc:
        print("missing:", exc)
"""


LEAK = """from databricks.sdk.runtime import dbutils
raise ValueError(f"cannot connect with {dbutils.secrets.get('e2e', 'api-key')}")
"""


@pytest.fixture(scope="module", params=["sqlite", "scaleout"])
def server(request, tmp_path_factory):
    """Tasks get no run-as token here. SQLite: the generated key in LAKEFLOW_HOME; Postgres + Redis:
    the key in LAKEFLOW_SECRETS_KEY, as every web process of a scale-out installation needs it."""
    home, database = tmp_path_factory.mktemp("serve-secrets"), None
    if request.param == "sqlite":
        started = start_serve(home, "serve (secrets)", extra_env={"LAKEFLOW_TASK_RUN_AS_TOKEN": "false"})
    else:
        started, database = start_scaleout(home, nodes=1, extra_env={
            "LAKEFLOW_TASK_RUN_AS_TOKEN": "false", "LAKEFLOW_SECRETS_KEY": Fernet.generate_key().decode()})
    yield started
    started.stop()
    if database:
        drop_database(database)


def user(server, name):
    token = server.manage("createapitoken", name).strip().splitlines()[-1]
    return WorkspaceClient(host=server.url, token=token)


def test_secrets_through_the_sdk_the_command_line_and_a_tasks_dbutils(server):
    ana, bob = user(server, "ana"), user(server, "bob")
    secret = "s3cr3t-" + os.urandom(8).hex()
    ana.secrets.create_scope(scope="e2e")
    ana.secrets.put_secret(scope="e2e", key="api-key", string_value=secret)
    put = subprocess.run([PYTHON, "manage.py", "secrets", "put", "e2e", "from-cli"], cwd=ROOT, env=server.env,
                         input=b"cli-value\n", capture_output=True, timeout=120)
    assert put.returncode == 0, put.stderr

    listed = list(ana.secrets.list_secrets(scope="e2e"))
    assert sorted(s.key for s in listed) == ["api-key", "from-cli"]
    assert all(s.last_updated_timestamp > 0 for s in listed)
    assert base64.b64decode(ana.secrets.get_secret(scope="e2e", key="api-key").value).decode() == secret
    assert "e2e" in {s.name for s in ana.secrets.list_scopes()}
    with pytest.raises(NotFound, match="Scope nope does not exist!"):
        ana.secrets.list_secrets(scope="nope")

    with pytest.raises(PermissionDenied):
        bob.secrets.get_secret(scope="e2e", key="api-key")
    ana.secrets.put_acl(scope="e2e", principal="bob", permission=workspace.AclPermission.READ)
    assert {(a.principal, a.permission) for a in ana.secrets.list_acls(scope="e2e")} == {
        ("ana", workspace.AclPermission.MANAGE), ("bob", workspace.AclPermission.READ)}
    assert base64.b64decode(bob.secrets.get_secret(scope="e2e", key="from-cli").value) == b"cli-value"
    with pytest.raises(PermissionDenied):
        bob.secrets.put_secret(scope="e2e", key="api-key", string_value="overwritten")

    script, leak = server.workspace / "read_secret.py", server.workspace / "leak_secret.py"
    script.write_text(textwrap.dedent(TASK).lstrip("\n"))
    leak.write_text(LEAK)
    job = ana.jobs.create(name="reads a secret", tasks=[
        jobs.Task(task_key="read", spark_python_task=jobs.SparkPythonTask(python_file=str(script))),
        jobs.Task(task_key="leak", spark_python_task=jobs.SparkPythonTask(python_file=str(leak)))])
    run = ana.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    task, leaked = sorted(run.tasks, key=lambda t: t.task_key != "read")
    output = ana.jobs.get_run_output(task.run_id)
    assert task.state.result_state == jobs.RunResultState.SUCCESS, (output.error, output.logs)
    # A task that fails with the value in its exception: stored and shown redacted.
    assert leaked.state.result_state == jobs.RunResultState.FAILED
    assert leaked.state.state_message == "ValueError: cannot connect with [REDACTED]"
    failed = ana.jobs.get_run_output(leaked.run_id)
    assert failed.error == "ValueError: cannot connect with [REDACTED]"
    assert secret not in failed.error_trace and secret not in str(ana.jobs.get_run(run.run_id).as_dict())

    logs = output.logs
    assert "value: [REDACTED]\n" in logs
    assert f"sha: {hashlib.sha256(secret.encode()).hexdigest()}\n" in logs  # the task saw the right value
    assert f"bytes sha: {hashlib.sha256(b'cli-value').hexdigest()}\n" in logs
    assert "keys: ['api-key', 'from-cli']\n" in logs and "scopes: ['e2e']\n" in logs
    assert "run-as token: False\n" in logs  # the secrets credential was enough
    assert "missing: dbutils.secrets: scope 'e2e' key 'missing': Secret does not exist with scope: e2e and key: missing" in logs
    assert secret not in logs
    exported = ana.jobs.export_run(task.run_id, views_to_export=jobs.ViewsToExport.ALL)
    page = "".join(view.content or "" for view in exported.views)
    assert "value: [REDACTED]" in page and secret not in page
    audit = server.client().api_client.do("GET", "/api/2.0/lakeflow/audit-log", query={"limit": 100})
    assert "putSecret" in str(audit) and secret not in str(audit)  # logged, without the value
