"""A user's history of system-table queries, for the Query history page (click to run again)."""

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone


class QueryRecord(models.Model):
    """One query a user ran on the page, and how it went. Append-only."""

    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    rows = models.BigIntegerField(null=True, blank=True)  # counted up to LAKEFLOW_SYSTEM_TABLES_MAX_ROWS
    truncated = models.BooleanField(default=False)  # it answered more than that
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="query_record_newest")]

    def __str__(self):
        return f"query {self.id} by {self.user_id} at {self.at:%Y-%m-%d %H:%M:%S}"
