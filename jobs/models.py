"""Jobs and their immutable versions, the API tokens that reach them, and service principals."""

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings as django_settings
from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from jobs.spec.documents import ReadableJSONDecoder


settings_saved = Signal()
"""Sent by Job.save_version, in its transaction, with `job` and `version`: what follows from a job's
new settings elsewhere (its trigger's state) listens here, so that jobs knows nothing of it."""


class Job(models.Model):
    """A job; its settings live in JobVersion rows, one per save."""

    class Kind(models.TextChoices):
        JOB = "JOB"  # created through jobs/create or the UI
        SUBMIT = "SUBMIT"  # the hidden job behind a runs/submit one-time run

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.JOB)
    name = models.TextField(blank=True, default="")
    creator = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    current_version = models.ForeignKey(
        "JobVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Soft delete: runs of a deleted job stay readable.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every admission decision, which serializes them per job on every database.
    admission_seq = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["kind", "deleted_at", "id"], name="job_listing")]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def settings(self):
        return self.current_version.settings if self.current_version_id else {}

    @transaction.atomic
    def save_version(self, settings_dict, user=None):
        """Store a new immutable version and make it current. A new job's creator owns it."""
        if self.pk is None:
            self.save()
            if self.creator_id is not None:
                JobPermission.objects.create(job=self, user_id=self.creator_id, level="IS_OWNER")
        last = self.versions.order_by("-number").values_list("number", flat=True).first() or 0
        version = JobVersion.objects.create(job=self, number=last + 1, settings=settings_dict, created_by=user)
        self.current_version = version
        self.name = settings_dict.get("name") or settings_dict.get("run_name") or ""
        self.save(update_fields=["current_version", "name"])
        # In this transaction: pausing, resuming or a new schedule take effect at once (the runs
        # app keeps the trigger's state: runs/triggers.py).
        settings_saved.send(sender=Job, job=self, version=version)
        return version


class JobVersion(models.Model):
    """One saved state of a job's settings. Never changed after it is written."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    settings = models.JSONField(decoder=ReadableJSONDecoder)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="one_version_number_per_job")]
        ordering = ["job", "number"]

    def __str__(self):
        return f"job {self.job_id} v{self.number}"


def hash_token(raw):
    # Tokens are 32 random bytes: a fast hash is enough, a salt adds nothing.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal access token. Only its hash is stored; the token is shown once."""

    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    comment = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # None: until revoked

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user, comment="", lifetime_seconds=None):
        """Create a token for user; returns (token row, the raw token to show once)."""
        raw = "dapi" + secrets.token_hex(32)
        now = timezone.now()  # one clock reading: the lifetime is exactly expiry - creation
        expires_at = now + timedelta(seconds=lifetime_seconds) if lifetime_seconds else None
        token = cls.objects.create(user=user, comment=comment, prefix=raw[:12], key_hash=hash_token(raw),
                                   created_at=now, expires_at=expires_at)
        return token, raw

    @classmethod
    def valid(cls, now=None):
        """Tokens that work now: not revoked, not expired, of an active user."""
        return cls.objects.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now or timezone.now()),
                                  revoked_at__isnull=True, user__is_active=True)

    @classmethod
    def find(cls, raw):
        """The valid token `raw` is (its user loaded), or None."""
        token = cls.valid().select_related("user").filter(key_hash=hash_token(raw)).first()
        if token is None:
            return None
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            # At most one write a minute per token: the API stays read-only for reads.
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token

    @classmethod
    def authenticate(cls, raw):
        token = cls.find(raw)
        return token.user if token else None


class ServicePrincipal(models.Model):
    """A user of its own kind: an identity for automation (no password, tokens only), with the
    application id Databricks tooling names it by (run_as.service_principal_name)."""

    user = models.OneToOneField(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="service_principal")
    application_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self):
        return f"service principal {self.application_id}"


ADMINS_GROUP = "admins"
"""Its members (and superusers) administer everything, as the workspace admins group does."""


def acts_for_a_task(user):
    """Whether this request came with a task's run-as token (runs/run_as.py): such a caller acts
    with the identity's grants, never as an admin, and cannot make tokens (which would outlive
    the attempt)."""
    return bool(getattr(user, "acts_for_a_task", False))



class JobPermission(models.Model):
    """A direct grant of a level on a job to a user (or service principal) or to a group. The
    rule that reads them is jobs/spec/access.py; a job has one IS_OWNER row."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="permissions")
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="job_permissions")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="job_permissions")
    level = models.CharField(max_length=20)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(user__isnull=True) ^ models.Q(group__isnull=True),
                                   name="job_permission_one_principal"),
            models.UniqueConstraint(fields=["job", "user"], name="one_level_per_user_and_job"),
            models.UniqueConstraint(fields=["job", "group"], name="one_level_per_group_and_job"),
            models.UniqueConstraint(fields=["job"], condition=models.Q(level="IS_OWNER"), name="one_owner_per_job"),
        ]
        indexes = [models.Index(fields=["user", "job"], name="job_permission_by_user"),
                   models.Index(fields=["group", "job"], name="job_permission_by_group")]

    def __str__(self):
        return f"{self.user or self.group} {self.level} on job {self.job_id}"
