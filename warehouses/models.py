"""SQL warehouses made with the SQL Warehouses API (api/warehouses.py). The configured ones (the
embedded DuckDB `default` and LAKEFLOW_WAREHOUSES) are settings, not rows: warehouses/catalog.py
puts both together.

A warehouse here is a database, not compute: its own DuckDB file in the tasks' area, or a
Postgres database whose connection URL is kept encrypted (vault/crypto.py). States change at
once (no STARTING or STOPPING): there is nothing to boot."""

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Warehouse(models.Model):
    class State(models.TextChoices):
        RUNNING = "RUNNING"  # made, started, or auto-started by a task that names it
        STOPPED = "STOPPED"  # stopped through the API; the next task on it starts it again
        DELETED = "DELETED"  # a tombstone: get still answers, list and tasks no longer see it

    id = models.CharField(primary_key=True, max_length=16)  # 16 hex digits, as Databricks' ids
    name = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    cluster_size = models.CharField(max_length=10)
    min_num_clusters = models.PositiveSmallIntegerField(default=1)
    max_num_clusters = models.PositiveSmallIntegerField(default=1)
    auto_stop_mins = models.PositiveIntegerField(default=120)
    warehouse_type = models.CharField(max_length=10, default="CLASSIC")
    enable_serverless_compute = models.BooleanField(default=False)
    enable_photon = models.BooleanField(default=True)
    spot_instance_policy = models.CharField(max_length=24, default="COST_OPTIMIZED")
    channel = models.CharField(max_length=24, default="CHANNEL_NAME_CURRENT")
    custom_tags = models.JSONField(default=list)  # [{"key", "value"}], the connection tag left out
    # A Fernet token of a postgresql:// URL; empty: the warehouse is a DuckDB file of its own.
    encrypted_connection = models.BinaryField(null=True, blank=True)
    creator = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    creator_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The claim on a name: two creates with one name cannot both commit.
            models.UniqueConstraint(fields=["name"], condition=~Q(state="DELETED"),
                                    name="warehouses_one_live_warehouse_per_name"),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def is_postgres(self):
        return bool(self.encrypted_connection)
