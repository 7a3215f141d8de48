"""Bad requests get the Databricks error shape: {"error_code", "message"} and the right status."""

import pytest
from django.db import OperationalError

from tests.api.conftest import create_job, shell_task


def assert_error(response, status, error_code, *words):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == error_code
    for word in words:
        assert word in body["message"]
    return body


def test_malformed_json_is_a_400_that_says_where(api):
    response = api.post("jobs/create", raw='{"name": "x",')
    assert_error(response, 400, "MALFORMED_REQUEST", "not valid JSON", "char 13")


def test_a_body_that_is_not_an_object_is_a_400(api):
    assert_error(api.post("jobs/create", raw="[1, 2]"), 400, "MALFORMED_REQUEST", "JSON object", "an array")


def test_nan_is_not_json(api):
    assert_error(api.post("jobs/create", raw='{"timeout_seconds": NaN}'), 400, "MALFORMED_REQUEST", "NaN")


def test_a_body_over_the_size_limit_is_refused_with_a_clear_message(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("jobs/create", {"name": "x" * 2000})
    assert_error(response, 413, "BAD_REQUEST", "larger than", "1,000 bytes")


def test_the_wrong_method_is_a_405(api):
    assert_error(api.get("jobs/create"), 405, "BAD_REQUEST", "POST")
    assert_error(api.post("jobs/get", {"job_id": 1}), 405, "BAD_REQUEST", "GET")


@pytest.mark.parametrize(
    "value, words",
    [("abc", ["job_id", "integer"]), ("1.5", ["job_id", "integer"]), ("-3", ["job_id", "between 1"])],
)
def test_a_query_id_that_is_not_a_positive_integer_is_a_400_naming_the_field(api, value, words):
    assert_error(api.get("jobs/get", job_id=value), 400, "INVALID_PARAMETER_VALUE", *words)


@pytest.mark.parametrize("value", [True, "7x", 1.0, [1], {"id": 1}])
def test_a_json_id_of_the_wrong_type_is_a_400_naming_the_field(api, value):
    assert_error(api.post("jobs/delete", {"job_id": value}), 400, "INVALID_PARAMETER_VALUE", "job_id")


def test_an_id_beyond_int64_is_a_400_not_a_crash(api):
    assert_error(api.get("jobs/get", job_id=str(2**63)), 400, "INVALID_PARAMETER_VALUE", "job_id")


def test_a_json_id_may_be_a_decimal_string_as_proto_json_allows(api):
    job_id = create_job(api)
    assert api.post_ok("jobs/reset", {"job_id": str(job_id), "new_settings": {"name": "renamed"}}) == {}
    assert api.get_ok("jobs/get", job_id=job_id)["settings"]["name"] == "renamed"


def test_a_missing_required_field_is_named(api):
    assert_error(api.get("jobs/get"), 400, "INVALID_PARAMETER_VALUE", "Missing required field: job_id")


def test_query_booleans_are_true_or_false(api):
    assert api.get("jobs/list", expand_tasks="true").status_code == 200
    assert api.get("jobs/list", expand_tasks="FALSE").status_code == 200
    assert_error(api.get("jobs/list", expand_tasks="yes"), 400, "INVALID_PARAMETER_VALUE", "expand_tasks")


def test_a_json_boolean_of_the_wrong_type_is_named(api):
    job_id = create_job(api)
    response = api.post("jobs/run-now", {"job_id": job_id, "queue": {"enabled": 1}})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "enabled", "true or false")


def test_a_page_token_this_server_did_not_make_is_a_400(api):
    assert_error(api.get("jobs/list", page_token="garbage!"), 400, "INVALID_PARAMETER_VALUE", "page_token")
    assert_error(api.get("jobs/runs/list", page_token="eyJwYWdlIjoxfQ"), 400, "INVALID_PARAMETER_VALUE")


def test_invalid_settings_list_every_problem_with_its_path(api):
    body = {"name": "bad", "max_concurrent_runs": "two",
            "tasks": [shell_task("a", depends_on=["missing"]), {"task_key": "b"}]}
    error = assert_error(api.post("jobs/create", body), 400, "INVALID_PARAMETER_VALUE",
                         "max_concurrent_runs", "tasks[0].depends_on[0].task_key", "tasks[1]")
    paths = [d["path"] for d in error["details"] if "path" in d]
    assert paths == ["max_concurrent_runs", "tasks[0].depends_on[0].task_key", "tasks[1]"]
    assert all(d["message"] for d in error["details"] if "path" in d)
    bad_request = [d for d in error["details"] if d.get("@type", "").endswith("google.rpc.BadRequest")]
    assert [v["field"] for v in bad_request[0]["field_violations"]] == paths


@pytest.mark.parametrize(
    "method, endpoint, params",
    [
        ("get", "jobs/get", {"job_id": 424242}),
        ("post", "jobs/update", {"job_id": 424242, "new_settings": {}}),
        ("post", "jobs/reset", {"job_id": 424242, "new_settings": {}}),
        ("post", "jobs/delete", {"job_id": 424242}),
        ("post", "jobs/run-now", {"job_id": 424242}),
        ("get", "jobs/runs/list", {"job_id": 424242}),
        ("post", "jobs/runs/cancel-all", {"job_id": 424242}),
    ],
)
def test_an_unknown_job_id_is_a_404_naming_the_job(api, method, endpoint, params):
    response = api.get(endpoint, **params) if method == "get" else api.post(endpoint, params)
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST", "Job 424242 does not exist.")


@pytest.mark.parametrize(
    "method, endpoint",
    [
        ("get", "jobs/runs/get"),
        ("get", "jobs/runs/get-output"),
        ("get", "jobs/runs/export"),
        ("post", "jobs/runs/cancel"),
        ("post", "jobs/runs/repair"),
        ("post", "jobs/runs/delete"),
    ],
)
def test_an_unknown_run_id_is_a_404_naming_the_run(api, method, endpoint):
    response = api.get(endpoint, run_id=515151) if method == "get" else api.post(endpoint, {"run_id": 515151})
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST", "Run 515151 does not exist.")


def test_a_database_error_is_a_503_the_sdk_retries(api, monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr("api.jobs.Job.objects.filter", locked)
    response = api.get("jobs/list")
    assert response.status_code == 503
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert response["Retry-After"] == "1"


def test_a_page_token_pointing_nowhere_sensible_is_a_400_not_a_crash(api):
    from api.http import encode_page_token

    for position in ({"page": -1}, {"after": 2**70}, {"page": True}, {"after": 1, "before": 2}):
        response = api.get("jobs/list", page_token=encode_page_token(position))
        assert response.status_code == 400, position
    response = api.get("jobs/get", job_id=create_job(api), page_token=encode_page_token({"page": -1}))
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["start_time_from", "start_time_to"])
def test_a_run_start_time_past_the_year_9999_is_a_400_not_a_crash(api, name):
    # Found by the schemathesis run: datetime cannot hold it, and the ValueError was a 500.
    assert_error(api.get("jobs/runs/list", **{name: str(2**62)}), 400, "INVALID_PARAMETER_VALUE",
                 name, "253402300799999")
    assert api.get("jobs/runs/list", **{name: "253402300799999"}).status_code == 200


@pytest.mark.parametrize("field, value, words", [
    ("run_as", "alice", ["run_as", "must be an object"]),
    ("run_as", {"user_name": 7}, ["run_as.user_name", "must be a string"]),
    ("email_notifications", ["a@example.com"], ["email_notifications", "must be an object"]),
    ("job_clusters", [1], ["job_clusters", "list of objects"]),
    ("budget_policy_id", 5, ["budget_policy_id", "must be a string"]),
    ("format", "TRIPLE_TASK", ["format", "MULTI_TASK"]),
])
def test_a_stored_field_of_the_wrong_json_type_is_a_400_and_no_job_is_made(api, field, value, words):
    # Found by the schemathesis run: these were stored as given, and a job with `run_as: "alice"`
    # then answered jobs/get with a 500 (and `run_as: null` broke the Job shape for SDK clients).
    response = api.post("jobs/create", {"name": "typed", field: value, "tasks": [shell_task("a")]})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE", *words)
    assert api.get_ok("jobs/list")["jobs"] == []


def test_a_task_field_of_the_wrong_json_type_is_a_400_and_the_job_is_unchanged(api):
    job_id = create_job(api)
    before = api.get_ok("jobs/get", job_id=job_id)["settings"]

    response = api.post("jobs/reset", {"job_id": job_id, "new_settings": {
        "tasks": [shell_task("a", libraries={"whl": "x.whl"})]}})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "tasks[0].libraries", "list of objects")
    assert api.get_ok("jobs/get", job_id=job_id)["settings"] == before


def test_a_null_schedule_or_run_as_is_left_out_of_the_saved_job(api):
    job_id = create_job(api, schedule=None, run_as=None)

    saved = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert "schedule" not in saved and "run_as" not in saved


def test_a_nul_character_in_a_body_string_is_a_400_and_no_job_is_made(api):
    # PostgreSQL stores no NUL in text or jsonb: psycopg's DataError was a 500 there.
    response = api.post("jobs/create", raw='{"name": "a\\u0000b", "tasks": []}')

    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "NUL")
    assert api.get_ok("jobs/list")["jobs"] == []


def test_a_nul_character_in_a_key_or_a_query_string_is_a_400(api):
    assert_error(api.post("jobs/create", {"tags": {"k\x00": "v"}}), 400, "INVALID_PARAMETER_VALUE", "NUL")
    assert_error(api.get("jobs/list", name="a\x00b"), 400, "INVALID_PARAMETER_VALUE", "NUL")
