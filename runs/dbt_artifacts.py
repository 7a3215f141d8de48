"""A dbt_task attempt's artifacts archive (runs/executors/dbt.py writes it beside the attempt's
log; runs/task_logs.py reads it): runs/get-output's ``dbt_output`` and the download it links to.

As on Databricks, ``artifacts_link`` is a pre-signed URL valid for 30 minutes: it downloads
without a token, as the user who asked for it (who must still be allowed to read the job's logs)."""

from django.core import signing

from runs.task_logs import dbt_artifacts_shown

DOWNLOAD_PATH = "/api/2.2/jobs/runs/dbt-artifacts"
LINK_SECONDS = 30 * 60
_SALT = "lakeflow.dbt-artifacts-link"


def dbt_output(attempt, *, base_url, viewer):
    """DbtOutput of a finished dbt task run that left its artifacts, else None."""
    if not dbt_artifacts_shown(attempt):
        return None
    signature = signing.TimestampSigner(salt=_SALT).sign(f"{attempt.id}.{viewer.id}")
    return {"artifacts_link": f"{base_url}{DOWNLOAD_PATH}?run_id={attempt.id}&signature={signature}"}


def signer_of_link(run_id, signature):
    """The id of the user a link was signed for, if ``signature`` signs ``run_id`` and is less than
    30 minutes old; else None."""
    try:
        value = signing.TimestampSigner(salt=_SALT).unsign(signature, max_age=LINK_SECONDS)
    except signing.BadSignature:  # also SignatureExpired
        return None
    signed_run, _, user_id = value.partition(".")
    return int(user_id) if signed_run == str(run_id) and user_id.isdigit() else None
