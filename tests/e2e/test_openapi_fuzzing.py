"""The API keeps to its OpenAPI document (api/openapi.yaml) under schemathesis's generated
requests, valid and invalid: no 5xx, and every answer has a status, content type and body the
document declares for that operation.

The server is a `serve` process of its own, so the jobs and runs the fuzzer makes disturb no
other test; it starts with a few real jobs and finished runs, since small ids (which Hypothesis
tries first) then name things that exist."""

import time
import warnings
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import drop_database, start_scaleout, start_serve, wait_until

pytestmark = pytest.mark.e2e

DOCUMENT = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
LINEAGE_DOCUMENT = DOCUMENT.with_name("openapi-lineage.yaml")
TEAMS_DOCUMENT = DOCUMENT.with_name("openapi-teams.yaml")
WORKSPACE_DOCUMENT = DOCUMENT.with_name("openapi-workspace.yaml")
NOTIFICATIONS_DOCUMENT = DOCUMENT.with_name("openapi-notifications.yaml")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and generation mode (valid, invalid) in the fuzzing phase.
MAX_EXAMPLES = 30
# The coverage phase's invalid cases for a JobSettings body (some 1,400 per operation, every field
# of every nested block made wrong) would take most of the CI budget; the fuzzing phase still
# sends them invalid settings, and tests/spec covers the checks field by field.
# How long, in all, the cases whose answer is a database error (503) are asked again (see
# answer()): a database outage of some seconds is waited out, while a request that always meets
# an error uses up the allowance at once and then fails as fast as any other.
RETRY_ALLOWANCE = {"seconds": 60.0}
SETTINGS_BODIES = ["jobsCreate", "jobsUpdate", "jobsReset", "runsSubmit", "jobsValidate"]

schema = schemathesis.openapi.from_path(DOCUMENT, config=schemathesis.Config.from_dict({
    # The token goes in every call below; generated Authorization headers would only test 401s.
    "generation": {"with-security-parameters": False, "deterministic": True, "max-examples": MAX_EXAMPLES},
    "operations": [{"include-operation-id": SETTINGS_BODIES,
                    "phases": {"coverage": {"generation": {"mode": "positive"}}}}],
}))


def finished(server, run_id):
    run = requests.get(f"{server.url}/api/2.2/jobs/runs/get", params={"run_id": run_id},
                       headers=server.headers, timeout=10).json()
    return run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


def seed(server):
    """A job with a failed task (so it can be repaired), a for-each, a condition, and a one-time run."""
    def post(endpoint, body):
        response = requests.post(f"{server.url}/api/2.2/{endpoint}", json=body, headers=server.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    job_id = post("jobs/create", {
        "name": "fuzz seed",
        "parameters": [{"name": "who", "default": "ada"}],
        "tasks": [
            {"task_key": "ok", "shell_command_task": {"command": "echo {{job.parameters.who}}"}},
            {"task_key": "fails", "depends_on": [{"task_key": "ok"}],
             "shell_command_task": {"command": "echo failing; exit 3"}},
            {"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}},
            {"task_key": "each", "for_each_task": {"inputs": '["a", "b"]', "task": {
                "task_key": "item", "shell_command_task": {"command": "echo {{input}}"}}}},
        ],
    })["job_id"]
    runs = [post("jobs/run-now", {"job_id": job_id})["run_id"],
            post("jobs/runs/submit", {"run_name": "once", "tasks": [
                {"task_key": "hello", "shell_command_task": {"command": "echo hello"}}]})["run_id"]]
    for run_id in runs:
        wait_until(lambda: finished(server, run_id), timeout=60, what=f"seed run {run_id} to finish")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_server(request, tmp_path_factory):
    """On both modes: Postgres refuses what SQLite stores (NUL, lone surrogates, int64 overflow)."""
    database = None
    if request.param == "sqlite":
        server = start_serve(tmp_path_factory.mktemp("serve-fuzz"), "serve (SQLite, fuzzed)")
    else:
        server, database = start_scaleout(tmp_path_factory.mktemp("scaleout-fuzz"), nodes=1)
    server.headers = {"Authorization": f"Bearer {server.token}"}
    try:
        seed(server)
        yield server
    finally:
        server.stop()
        if database:
            drop_database(database)


def answer(case, base_url, server):
    """The server's answer to the case. One that says the database was unavailable (503
    TEMPORARILY_UNAVAILABLE, as the server answers any database error) is asked again after its
    Retry-After, as the SDK does, while the module's RETRY_ALLOWANCE lasts: such a 503 says
    nothing of the request, and the checks are about the request. Each one is reported as a
    warning, with the server's own account of the error (the warnings summary shows it, pass or
    fail)."""
    while True:
        response = case.call(base_url=base_url, headers=server.headers, timeout=30)
        wait = float(response.headers.get("Retry-After") or 1)
        if response.status_code != 503 or RETRY_ALLOWANCE["seconds"] < wait:
            return response
        warnings.warn(f"{case.method} {case.path} answered 503 ({response.text}); asking again. "
                      f"The server's log:\n{database_errors(server)}", stacklevel=1)
        RETRY_ALLOWANCE["seconds"] -= wait
        time.sleep(wait)


def validate(case, response, server):
    """The checks; a failing 503 shows the server's account of its database error."""
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception:
        if response.status_code == 503:
            print(database_errors(server))  # pytest shows a failed test's output
        raise


def database_errors(server, lines=40):
    log = server.log_text().splitlines()
    met = [i for i, line in enumerate(log) if "met a database error" in line]
    return "\n".join(log[met[-1]:met[-1] + lines]) if met else "(no database error in the server's log)"


def test_the_document_is_served_without_a_token_and_is_the_file(fuzz_server):
    import yaml

    response = requests.get(f"{fuzz_server.url}/api/2.2/openapi.json", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == yaml.safe_load(DOCUMENT.read_text())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_keeps_to_the_openapi_document(case, fuzz_server):
    validate(case, answer(case, f"{fuzz_server.url}/api/2.2", fuzz_server), fuzz_server)


lineage_schema = schemathesis.openapi.from_path(LINEAGE_DOCUMENT, config=schemathesis.Config.from_dict({
    "generation": {"with-security-parameters": False, "deterministic": True, "max-examples": MAX_EXAMPLES},
}))


@lineage_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_lineage_answer_keeps_to_its_openapi_document(case, fuzz_server):
    validate(case, answer(case, fuzz_server.url, fuzz_server), fuzz_server)


teams_schema = schemathesis.openapi.from_path(TEAMS_DOCUMENT, config=schemathesis.Config.from_dict({
    "generation": {"with-security-parameters": False, "deterministic": True, "max-examples": MAX_EXAMPLES},
}))


@teams_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_permissions_and_audit_answer_keeps_to_its_openapi_document(case, fuzz_server):
    validate(case, answer(case, fuzz_server.url, fuzz_server), fuzz_server)


workspace_schema = schemathesis.openapi.from_path(WORKSPACE_DOCUMENT, config=schemathesis.Config.from_dict({
    "generation": {"with-security-parameters": False, "deterministic": True, "max-examples": MAX_EXAMPLES},
}))


@workspace_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_workspace_answer_keeps_to_its_openapi_document(case, fuzz_server):
    validate(case, answer(case, fuzz_server.url, fuzz_server), fuzz_server)


notifications_schema = schemathesis.openapi.from_path(NOTIFICATIONS_DOCUMENT, config=schemathesis.Config.from_dict({
    "generation": {"with-security-parameters": False, "deterministic": True, "max-examples": MAX_EXAMPLES},
}))


@notifications_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_notification_destinations_answer_keeps_to_its_openapi_document(case, fuzz_server):
    validate(case, answer(case, fuzz_server.url, fuzz_server), fuzz_server)
