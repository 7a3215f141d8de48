"""The notifications the run, job and jobs pages show, as fragments those pages fetch by URL
(static/js/notification_fragments.js): the runs and jobs apps never import this one.

- the run's card: every notification of the run, its state, tries and the receiver's answer;
- the job's card: whom each event notifies, at job level and per task, its mutes and health rules;
- the jobs list's summary (admins only): failed notifications of the last days, per job.
"""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from jobs.models import Job
from jobs.permissions import caller_of, check
from jobs.spec.access import Action
from jobs.spec.notifications import EVENTS, JOB_MUTES, TASK_MUTES, destination_ids
from notifications.models import Destination, Notification
from notifications.rules import notifies, settings_notify
from runs.engine.states import is_finished
from runs.models import Run, RunEvent

S = Notification.State
UNFINISHED = (S.PENDING, S.SENDING, S.RETRYING)
BADGES = {  # state -> the colour family every page uses (static/css/app.css state-*)
    S.PENDING: "pending", S.SENDING: "running", S.RETRYING: "retrying", S.SENT: "success", S.FAILED: "failed"}
ROWS_SHOWN = 300
SUMMARY_DAYS = 7
SUMMARY_JOBS = 50


@login_required
def run_card(request, run_id):
    run = get_object_or_404(Run.objects.select_related("job", "job_version"), id=run_id)
    check(request.user, run.job_id, Action.VIEW)
    notifications = Notification.objects.filter(run=run).select_related("destination").order_by("created_at", "id")
    rows = [notification_row(n) for n in notifications[:ROWS_SHOWN + 1]]
    more = notifications.count() - ROWS_SHOWN if len(rows) > ROWS_SHOWN else 0
    configured = settings_notify(run.job_version.settings)
    return render(request, "notifications/_run_card.html", {
        "run": run, "rows": rows[:ROWS_SHOWN], "more": more, "configured": configured,
        "live": is_live(run, configured)})


def is_live(run, configured):
    """Whether the card may still change: a notification not yet sent or given up, or a run whose
    job notifies and whose events may still make some (it runs, or their reactions are still due:
    a page that saw the run end may ask before the on_failure rows exist)."""
    if Notification.objects.filter(run=run, state__in=UNFINISHED).exists():
        return True
    if not configured:
        return False
    return not is_finished(run.life_cycle_state) or RunEvent.objects.filter(run=run, reactions_pending=True).exists()


def notification_row(n):
    kind, _, value = n.recipient.partition(":")
    return {
        "id": n.id, "at": n.created_at, "sent_at": n.sent_at, "event": n.event, "task_key": n.task_key,
        "kind": kind, "address": value if kind == "email" else "",
        "destination_id": value if kind == "destination" else "", "destination": n.destination, "channel": n.channel,
        "state": n.state, "badge": BADGES.get(n.state, "pending"),
        "next_try_at": n.next_try_at if n.state == S.RETRYING else None, "tries": n.tries,
        "answer": n.answer, "error": n.error}


@login_required
def job_card(request, job_id):
    job = get_object_or_404(Job.objects.select_related("current_version"), id=job_id)
    check(request.user, job.id, Action.VIEW)
    settings = job.settings
    tasks = [t for t in settings.get("tasks") or [] if isinstance(t, dict)]
    destinations = Destination.objects.in_bulk({destination for _, destination in destination_ids(settings)})
    blocks = [{"scope": "job", "task_key": "", **block_summary(settings, destinations, JOB_MUTES)}]
    blocks += [{"scope": "task", "task_key": task.get("task_key", ""), **block_summary(task, destinations, TASK_MUTES)}
               for task in tasks if notifies(task) or task.get("notification_settings")]
    return render(request, "notifications/_job_card.html", {"job": job, "blocks": blocks})


def block_summary(block, destinations, mute_names):
    """What one job or task block says about notifications, ready to show."""
    emails = block.get("email_notifications") or {}
    webhooks = block.get("webhook_notifications") or {}
    events = []
    for event in EVENTS:
        addresses = [a for a in emails.get(event) or [] if isinstance(a, str)]
        ids = [e["id"] for e in webhooks.get(event) or [] if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if addresses or ids:
            events.append({"event": event, "addresses": addresses,
                           "destinations": [{"id": i, "destination": destinations.get(i)} for i in ids]})
    mutes = dict(block.get("notification_settings") or {})
    if emails.get("no_alert_for_skipped_runs"):  # the older place of that mute
        mutes.setdefault("no_alert_for_skipped_runs", True)
    rules = [r for r in (block.get("health") or {}).get("rules") or [] if isinstance(r, dict)]
    return {"events": events, "mutes": [(name, mutes[name]) for name in mute_names if name in mutes], "rules": rules}


@login_required
def failures_summary(request):
    """Admins only (anyone else gets nothing): the jobs whose notifications failed lately."""
    if not caller_of(request.user).is_admin:
        return HttpResponse("")
    since = timezone.now() - timedelta(days=SUMMARY_DAYS)
    per_job = list(Notification.objects.filter(state=S.FAILED, created_at__gte=since)  # index notifications_by_state
                   .values("run__job_id").annotate(failed=Count("id"), latest_run=Max("run_id"))
                   .order_by("-failed", "run__job_id"))
    if not per_job:
        return HttpResponse("")
    jobs = Job.objects.in_bulk([row["run__job_id"] for row in per_job[:SUMMARY_JOBS]])
    rows = [{"job": jobs.get(row["run__job_id"]), "job_id": row["run__job_id"], "failed": row["failed"],
             "latest_run": row["latest_run"]} for row in per_job[:SUMMARY_JOBS]]
    return render(request, "notifications/_failures_summary.html", {
        "rows": rows, "more": len(per_job) - len(rows), "days": SUMMARY_DAYS,
        "total": sum(row["failed"] for row in per_job)})
