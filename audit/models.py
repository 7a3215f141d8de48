"""The audit log: one append-only row per state-changing request, allowed or not.

Rows name their user by id and name, not by foreign key: removing a user changes no row. Nothing
in this codebase updates or deletes a row (the queryset and the model refuse to, the admin is
read-only, and no API or page offers it)."""

from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """An attempt to change or delete an audit row."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit rows cannot be changed")

    def delete(self):
        raise AppendOnly("audit rows cannot be deleted")


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        OK = "ok"
        DENIED = "denied"  # 401, 403, 429: not allowed to
        FAILED = "failed"  # allowed, but refused as invalid or failed

    at = models.DateTimeField(default=timezone.now, db_index=True)
    service_name = models.CharField(max_length=40)  # jobs, tokens, accounts, lineage, admin, ...
    action_name = models.CharField(max_length=80)  # Databricks' audit names: runNow, changeJobAcl, ...
    user_id = models.IntegerField(null=True, blank=True)
    user_name = models.CharField(max_length=200, blank=True)  # who, as they were called then
    credential = models.CharField(max_length=80, blank=True)  # "session", "token dapi1234abcd", ...
    job_id = models.BigIntegerField(null=True, blank=True)
    target = models.CharField(max_length=200, blank=True)  # "job 12", "run 34", "token 5", ...
    request_params = models.JSONField(default=dict)  # secrets redacted
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error_message = models.TextField(blank=True)
    source_ip_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user_name", "id"], name="audit_by_user"),
                   models.Index(fields=["action_name", "id"], name="audit_by_action"),
                   models.Index(fields=["job_id", "id"], name="audit_by_job")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user_name or '-'} {self.service_name}.{self.action_name} {self.outcome}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnly("audit rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit rows cannot be deleted")
