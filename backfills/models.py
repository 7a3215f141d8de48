"""Backfills: one job run per slot of a past time range, driven a few at a time, and what each
slot's run is (backfills/driving.py starts them; runs/engine/backfill.py decides which)."""

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone

from jobs.models import Job
from jobs.spec.documents import ReadableJSONDecoder
from runs.engine.backfill import Order, ReprocessPolicy
from runs.models import Run


class Backfill(models.Model):
    """A backfill of one job: its range, its slots in the order they start, and its options."""

    class State(models.TextChoices):
        RUNNING = "RUNNING"  # slots left to start, or runs not finished (set at creation, and by repair-failed)
        FINISHED = "FINISHED"  # every slot's run ended (set by the driver)
        CANCELED = "CANCELED"  # canceled by a user, or its job was deleted: no new run starts
        STOPPED = "STOPPED"  # a slot's run could not be made (state_message says why); cancel or repair-failed

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="backfills")
    creator = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()  # excluded: [start_time, end_time)
    # Where the slots came from: {"schedule": {quartz_cron_expression, timezone_id}} or
    # {"interval": {"interval", "unit"}, "timezone_id"}.
    cadence = models.JSONField(decoder=ReadableJSONDecoder)
    timezone_id = models.CharField(max_length=100, default="UTC")
    parameter = models.CharField(max_length=200, blank=True, default="")  # the job parameter it fills ("": none)
    parameter_form = models.CharField(max_length=10, blank=True, default="")  # "date" or "datetime"
    job_parameters = models.JSONField(decoder=ReadableJSONDecoder, default=dict, blank=True)  # extra, as given
    reprocess_policy = models.CharField(max_length=10, choices=[(p.value, p.value) for p in ReprocessPolicy])
    order = models.CharField(max_length=15, choices=[(o.value, o.value) for o in Order])
    max_concurrent_runs = models.PositiveIntegerField(default=1)  # unfinished runs at once, on top of the job's
    # The ISO instants (UTC) of its slots, in the order their runs start; fixed at creation.
    slots = models.JSONField(decoder=ReadableJSONDecoder, default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    state_message = models.TextField(blank=True, default="")
    ended_at = models.DateTimeField(null=True, blank=True)
    # Bumped first in every transaction that starts its runs: a row lock on Postgres (the write
    # lock on SQLite), so two drivers never both take its last free place.
    drive_seq = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["job", "-id"], name="backfill_job_newest"),
            models.Index(fields=["state"], name="backfill_state"),
        ]

    def __str__(self):
        return f"backfill {self.id} of job {self.job_id}"


class BackfillRun(models.Model):
    """A slot of a backfill that has its run: claimed (unique per backfill and slot) in the
    transaction that makes the run, so each slot runs at most once per backfill."""

    backfill = models.ForeignKey(Backfill, on_delete=models.CASCADE, related_name="slot_runs")
    slot = models.DateTimeField()
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_at = models.DateTimeField(default=timezone.now)
    # Repair-failed asked for it; the driver repairs it when the backfill has a free place.
    repair_asked = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["backfill", "slot"], name="one_run_per_backfill_slot")]

    def __str__(self):
        return f"slot {self.slot:%Y-%m-%d %H:%M:%S} of backfill {self.backfill_id}"


class BackfillEvent(models.Model):
    """Append-only: what happened to a backfill and why (created, a slot's run started, a repair
    asked or started, canceled, stopped, finished). Its page lists them."""

    backfill = models.ForeignKey(Backfill, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    type = models.CharField(max_length=40)  # dotted: backfill.created, backfill.slot_started, ...
    reason = models.TextField(blank=True, default="")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["backfill", "id"], name="backfill_event_order")]

    def __str__(self):
        return f"{self.type} of backfill {self.backfill_id}"
