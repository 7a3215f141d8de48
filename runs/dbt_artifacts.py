"""A dbt_task attempt's artifacts archive (runs/executors/dbt.py writes it in the task's
directory): runs/get-output's ``dbt_output`` and the download it links to."""

from runs.task_logs import dbt_artifacts_shown

DOWNLOAD_PATH = "/api/2.2/jobs/runs/dbt-artifacts"


def dbt_output(attempt, *, base_url):
    """DbtOutput of a finished dbt task run that left its artifacts, else None."""
    if not dbt_artifacts_shown(attempt):
        return None
    return {"artifacts_link": f"{base_url}{DOWNLOAD_PATH}?run_id={attempt.id}"}
