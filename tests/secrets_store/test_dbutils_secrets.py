"""dbutils.secrets in a task process, against a live server: get, getBytes, list, listScopes, and
errors that name the scope and key."""

import importlib.util
from pathlib import Path

import pytest

from runs.attempt_credentials import secrets_environment
from runs.models import TaskRun
from tests.api.conftest import client_for, create_job, make_user
from tests.secrets_store.conftest import SecretsClient

EXECUTORS = Path(__file__).resolve().parents[2] / "runs" / "executors"


def load(name):
    """The module as a task process loads it: by file path, not from the project."""
    spec = importlib.util.spec_from_file_location(f"_test_{name}", EXECUTORS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def task_secrets(transactional_db, client, live_server, monkeypatch, held_broker):
    """dbutils.secrets of a running attempt of alice's, whose scope "s" holds two secrets."""
    alice = SecretsClient(client_for(client, make_user("alice")))
    alice.create_scope("s")
    alice.put("s", "password", "pä55")
    alice.ok(alice.post("put", {"scope": "s", "key": "blob", "bytes_value": "AAEC/w=="}))
    run_id = alice.api.post_ok("jobs/run-now", {"job_id": create_job(alice.api)})["run_id"]
    attempt = TaskRun.objects.select_related("run").get(run_id=run_id)
    environment = secrets_environment(attempt)
    monkeypatch.setenv("LAKEFLOW_SECRETS_URL", live_server.url)
    monkeypatch.setenv("LAKEFLOW_SECRETS_TOKEN", environment["LAKEFLOW_SECRETS_TOKEN"])
    return load("dbutils").DBUtils().secrets


def test_a_task_gets_strings_bytes_keys_and_scopes(task_secrets):
    assert task_secrets.get("s", "password") == "pä55"
    assert task_secrets.getBytes("s", "blob") == b"\x00\x01\x02\xff"
    assert [m.key for m in task_secrets.list("s")] == ["blob", "password"]
    assert [s.name for s in task_secrets.listScopes()] == ["s"]


def test_a_missing_scope_or_key_raises_naming_both(task_secrets):
    with pytest.raises(KeyError) as missing_key:
        task_secrets.get("s", "nope")
    assert str(missing_key.value) == ("dbutils.secrets: scope 's' key 'nope': "
                                      "Secret does not exist with scope: s and key: nope")
    with pytest.raises(KeyError) as missing_scope:
        task_secrets.get("other", "k")
    assert "scope 'other' key 'k'" in str(missing_scope.value) and "Scope other does not exist!" in str(missing_scope.value)
    with pytest.raises(TypeError):
        task_secrets.get("s", None)


def test_outside_a_task_it_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("LAKEFLOW_SECRETS_URL", raising=False)
    monkeypatch.delenv("LAKEFLOW_SECRETS_TOKEN", raising=False)
    secrets = load("dbutils_secrets").Secrets()
    with pytest.raises(RuntimeError, match="LAKEFLOW_SECRETS_URL and LAKEFLOW_SECRETS_TOKEN are not set"):
        secrets.get("s", "k")


def test_turned_off_it_names_the_setting(monkeypatch):
    monkeypatch.delenv("LAKEFLOW_SECRETS_URL", raising=False)
    monkeypatch.delenv("LAKEFLOW_SECRETS_TOKEN", raising=False)
    monkeypatch.setenv("LAKEFLOW_TASK_SECRETS", "false")  # what the worker gives tasks then
    secrets = load("dbutils_secrets").Secrets()
    with pytest.raises(RuntimeError, match="turned off on this server: its operator set LAKEFLOW_TASK_SECRETS=false"):
        secrets.listScopes()
