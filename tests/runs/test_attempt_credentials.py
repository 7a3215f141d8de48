"""An attempt's credential names that attempt and nothing else; its OpenLineage run id reverses."""

from runs.attempt_credentials import (
    attempt_credential,
    attempt_of_credential,
    attempt_of_openlineage_run_id,
    job_run_openlineage_id,
    openlineage_run_id,
)


def test_a_credential_names_its_attempt_and_a_changed_one_names_none():
    token = attempt_credential(1000000000042)
    assert attempt_of_credential(token) == 1000000000042
    assert attempt_of_credential(token.replace("42", "43", 1)) is None
    assert attempt_of_credential(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert attempt_of_credential("dapi-some-api-token") is None


def test_an_attempts_openlineage_run_id_is_a_uuid_that_names_it_and_a_job_runs_does_not():
    run_id = openlineage_run_id(1000000000042)
    assert len(run_id) == 36 and attempt_of_openlineage_run_id(run_id) == 1000000000042
    assert attempt_of_openlineage_run_id(run_id.upper()) == 1000000000042
    assert attempt_of_openlineage_run_id(job_run_openlineage_id(42)) is None
    assert attempt_of_openlineage_run_id("0e8bd2c0-33e7-4d5c-9dcb-1d1b4b4f4f11") is None
    assert attempt_of_openlineage_run_id("not a uuid") is None
