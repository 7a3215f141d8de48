"""Datasets and who read and wrote them: one Edge per task attempt, dataset and direction, and
one Access per task (or job trigger), dataset and direction summing them up for the graph.

- A dataset is a table, named ``<warehouse>.<schema>.<table>`` as table-update triggers name it,
  or a path (``/Volumes/...``, ``dbfs:/...``, a local or object-store path): lineage/names.py.
- Edges are history (a run's Lineage view, the system-table rows, freshness, row counts over
  time); Accesses are what traversal walks: recursive SQL over a table that grows with the
  number of distinct (task, dataset) pairs, not with the number of runs (lineage/graph.py).
- Our database is the store: nothing here needs a graph database.
"""

from django.db import models
from django.utils import timezone

from jobs.spec.documents import ReadableJSONDecoder
from runs.models import Run, TaskRun


class Dataset(models.Model):
    class Kind(models.TextChoices):
        TABLE = "TABLE"
        PATH = "PATH"

    name = models.CharField(max_length=1000, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name


class Direction(models.TextChoices):
    READ = "read"
    WRITE = "write"


class Source(models.TextChoices):
    """How an edge was captured."""

    SQL = "sql"
    OPENLINEAGE = "openlineage"
    DECLARED = "declared"
    TRIGGER = "trigger"
    DBT = "dbt"  # a dbt_task's manifest and run results


class Edge(models.Model):
    """One task attempt read or wrote one dataset. Append-only."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="edges")
    direction = models.CharField(max_length=5, choices=Direction.choices)
    source = models.CharField(max_length=12, choices=Source.choices)
    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    job_id = models.BigIntegerField(null=True, blank=True)  # the run's job (a number: jobs come and go)
    task_key = models.CharField(max_length=100)
    columns = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)  # names, where known
    row_count = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task_run", "dataset", "direction", "source"],
                                               name="edge_once_per_attempt")]
        indexes = [
            models.Index(fields=["dataset", "direction", "-at"], name="edge_dataset_newest"),
            models.Index(fields=["run"], name="edge_run"),
        ]

    def __str__(self):
        return f"{self.task_key} {self.direction} {self.dataset_id} in run {self.run_id}"


class ColumnEdge(models.Model):
    """In one attempt, a target column was computed from a source column. Append-only."""

    target = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    target_column = models.CharField(max_length=300)
    source = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    source_column = models.CharField(max_length=300)
    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    job_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["task_run", "target", "target_column", "source", "source_column"], name="column_edge_once")]
        indexes = [
            models.Index(fields=["target", "target_column"], name="column_edge_target"),
            models.Index(fields=["source", "source_column"], name="column_edge_source"),
        ]


class Access(models.Model):
    """A task (task_key; "" for the job's trigger) reads or writes a dataset: the summary the
    graph walks, with its latest edge."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="accesses")
    direction = models.CharField(max_length=5, choices=Direction.choices)
    job_id = models.BigIntegerField()
    task_key = models.CharField(max_length=100, blank=True, default="")
    last_at = models.DateTimeField(default=timezone.now)
    last_run_id = models.BigIntegerField(null=True, blank=True)
    last_task_run_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "direction", "job_id", "task_key"],
                                               name="access_once")]
        indexes = [
            models.Index(fields=["job_id", "task_key", "direction"], name="access_task"),
            models.Index(fields=["dataset", "direction"], name="access_dataset"),
        ]


class Gap(models.Model):
    """What capture could not tell about one attempt ("lineage unknown: <reason>")."""

    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    message = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["run"], name="gap_run")]


class Delivery(models.Model):
    """One OpenLineage event for the configured endpoint: the outbox its sender drains, retried."""

    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=10)  # START, COMPLETE, FAIL, ABORT
    body = models.JSONField(decoder=ReadableJSONDecoder)
    created_at = models.DateTimeField(default=timezone.now)
    next_try_at = models.DateTimeField(null=True, blank=True)  # None: delivered, or given up
    tries = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["task_run", "event_type"], name="delivery_once")]
        indexes = [models.Index(fields=["next_try_at"], name="delivery_due")]
