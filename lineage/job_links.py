"""Links a job's settings make, kept as Accesses of its trigger (task_key ""): a table-update
trigger reads its tables, a file-arrival trigger its location. run_job_task links between jobs
are read from the settings when the graph is drawn (lineage/graph.py)."""

from django.utils import timezone

from lineage.models import Access, Direction
from lineage.names import DatasetName, NameRefused, declared_dataset, table_dataset
from lineage.recording import datasets_named, note_accesses

TRIGGER = ""  # the task_key of a job's trigger in Access rows


def trigger_datasets(settings):
    """The datasets a job's trigger watches."""
    trigger = settings.get("trigger") or {}
    names = [table_dataset(name) for name in (trigger.get("table_update") or {}).get("table_names") or []
             if isinstance(name, str)]
    url = (trigger.get("file_arrival") or {}).get("url")
    if isinstance(url, str) and url.strip():
        try:
            names.append(declared_dataset(url))
        except NameRefused:  # a relative path: the job's own checks refuse it
            names.append(DatasetName(url.strip(), "PATH"))
    return names


def job_settings_saved(sender, job, version, **kwargs):
    """jobs.models.settings_saved: the job's trigger links follow its settings, in its transaction."""
    watched = datasets_named(trigger_datasets(version.settings or {}))
    ids = {dataset.id for dataset in watched.values()}
    Access.objects.filter(job_id=job.id, task_key=TRIGGER).exclude(dataset_id__in=ids).delete()
    if ids:
        note_accesses(ids, Direction.READ, job.id, TRIGGER, timezone.now())
