"""Notification destinations (admin-defined receivers) and notifications (one intended delivery
each, the outbox the senders work from)."""

import json
import uuid

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone

from runs.models import Run
from vault import crypto


def new_destination_id():
    return str(uuid.uuid4())


class Destination(models.Model):
    """A receiver jobs name by id in webhook_notifications: an email list, a Slack or Teams
    incoming webhook, a PagerDuty integration, or any HTTP endpoint. Its write-only fields (URLs,
    keys, passwords: notifications/destinations.py SECRET_FIELDS) are encrypted at rest and never
    read back through the API."""

    class Type(models.TextChoices):
        EMAIL = "EMAIL"
        SLACK = "SLACK"
        MICROSOFT_TEAMS = "MICROSOFT_TEAMS"
        PAGERDUTY = "PAGERDUTY"
        WEBHOOK = "WEBHOOK"

    id = models.CharField(primary_key=True, max_length=36, default=new_destination_id, editable=False)
    display_name = models.CharField(max_length=255)
    destination_type = models.CharField(max_length=20, choices=Type.choices)
    config = models.JSONField(default=dict, blank=True)  # the readable fields (email addresses, ...)
    encrypted_secrets = models.BinaryField(default=b"", blank=True)  # Fernet token of a JSON object
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name", "id"]

    def __str__(self):
        return f"{self.display_name} ({self.destination_type})"

    @property
    def secrets(self) -> dict:
        return json.loads(crypto.decrypt(self.encrypted_secrets)) if self.encrypted_secrets else {}

    @secrets.setter
    def secrets(self, values: dict):
        self.encrypted_secrets = crypto.encrypt(json.dumps(values).encode()) if values else b""


class Notification(models.Model):
    """One intended delivery: this run's event, for this cause, to this recipient. The unique key
    makes it exist at most once however often (and on however many nodes) the reaction that
    wants it runs; the senders claim it by compare-and-swap (notifications/delivery.py).

    ``next_try_at`` is when a sender should look at it next: the first try, the next retry, or the
    end of a sender's claim (a sender that died mid-delivery); null once it is sent or failed."""

    class State(models.TextChoices):
        PENDING = "PENDING"  # not tried yet
        SENDING = "SENDING"  # claimed by a sender until next_try_at
        RETRYING = "RETRYING"  # the last try failed; the next is at next_try_at
        SENT = "SENT"
        FAILED = "FAILED"  # given up (or cannot be sent at all); the error says why

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="notifications")
    task_key = models.CharField(max_length=100, blank=True, default="")  # "" for the job's own
    event = models.CharField(max_length=60)  # on_start, on_success, on_failure, ...
    cause = models.CharField(max_length=200)  # which occasion: notifications/rules.py cause_key
    recipient = models.CharField(max_length=320)  # "email:<address>" or "destination:<id>"
    destination = models.ForeignKey(Destination, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="notifications")
    channel = models.CharField(max_length=20)  # EMAIL or the destination's type
    facts = models.JSONField(default=dict)  # what happened, as the messages tell it
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    tries = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    answer = models.TextField(blank=True, default="")  # the receiver's answer to the last try
    error = models.TextField(blank=True, default="")  # why the last try failed

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "cause", "recipient"], name="notifications_once_per_cause")]
        indexes = [models.Index(fields=["next_try_at"], name="notifications_due"),
                   models.Index(fields=["state", "created_at"], name="notifications_by_state")]

    def __str__(self):
        return f"{self.event} of run {self.run_id} to {self.recipient}: {self.state}"


class HealthWarning(models.Model):
    """A health rule a run (or one of its tasks) broke: at most one per rule, run, task and
    occasion (the run or one repair of it); its event (run.health_warning) carries the alerts."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="health_warnings")
    task_key = models.CharField(max_length=100, blank=True, default="")
    metric = models.CharField(max_length=40)
    occasion = models.CharField(max_length=60)  # "run", "repair-<id>", or a backlog window
    threshold = models.BigIntegerField()
    observed = models.FloatField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "task_key", "metric", "occasion"],
                                               name="notifications_one_warning_per_occasion")]
