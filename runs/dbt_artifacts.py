"""A dbt_task attempt's artifacts archive (runs/executors/dbt.py writes it in the task's
directory): runs/get-output's ``dbt_output`` and the download it links to."""

from runs.executors.dbt import artifacts_path
from runs.executors.files import open_task_file

DOWNLOAD_PATH = "/api/2.2/jobs/runs/dbt-artifacts"
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024


def open_artifacts(attempt):
    """The archive as an open binary file, or None (not a dbt task, not got that far, or not a
    regular file: never through a link the task left)."""
    if attempt.task_type != "dbt_task" or not attempt.log_path:
        return None
    try:
        return open_task_file(artifacts_path(attempt.log_path), max_bytes=MAX_ARCHIVE_BYTES)
    except OSError:
        return None


def dbt_output(attempt, *, base_url):
    """DbtOutput of a finished dbt task run that left its artifacts, else None."""
    archive = open_artifacts(attempt)
    if archive is None:
        return None
    archive.close()
    return {"artifacts_link": f"{base_url}{DOWNLOAD_PATH}?run_id={attempt.id}"}
