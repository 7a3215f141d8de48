"""The backfill pages, under the namespace backfills: (lakeflow_site/urls.py): a job's Backfill
form (Preview shows the dry run, Start makes it), a backfill's page (progress bar, its slots with
their runs, its events, Cancel, Repair failed runs; all refresh while it runs),
and the card of the job page that lists the job's backfills (both fetched by
static/js/backfill_fragments.js).

Who may do what is the API's rule: CAN_MANAGE_RUN on the job to make, cancel or repair one,
CAN_VIEW to look at it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backfills.driving import BackfillRefused, ask_repairs, cancel_backfill
from backfills.forms import BackfillForm
from backfills.models import Backfill
from backfills.planning import BackfillInvalid, create_backfill, plan_backfill, timed_trigger
from backfills.status import progress_of, slot_rows
from jobs.pages import find_job_or_404
from jobs.permissions import check
from jobs.spec.access import Action
from runs.admission import max_concurrent_runs
from runs.engine.backfill import SlotState
from runs.engine.parameters import effective_job_parameters, parameter_values
from runs.live import state_class, state_label

BACKFILLS_ON_CARD = 10
EVENTS_SHOWN = 30
# Bootstrap colours of the progress bar, one per slot state, in the order the bar shows them.
BAR = [(SlotState.DONE, "bg-success", "done"), (SlotState.RUNNING, "bg-primary progress-bar-striped progress-bar-animated",
                                               "running"),
       (SlotState.QUEUED, "bg-info", "queued"), (SlotState.FAILED, "bg-danger", "failed")]


def schedule_zone(job):
    schedule = timed_trigger(job.settings, "schedule")
    return None if schedule is None else schedule.get("timezone_id") or "UTC"


@login_required
def new_backfill(request, job_id):
    job = find_job_or_404(job_id)
    check(request.user, job.id, Action.RUN)
    form = BackfillForm(request.POST or None, job=job, schedule_zone=schedule_zone(job),
                        job_limit=max_concurrent_runs(job))
    preview = None
    if request.method == "POST" and form.is_valid():
        backfill_request = form.request()
        if backfill_request is not None:
            try:
                if request.POST.get("action") == "start":
                    backfill = create_backfill(job, backfill_request, user=request.user)
                    messages.success(request, f"Backfill {backfill.id} started: {len(backfill.slots)} slot(s).")
                    return redirect("backfills:detail", backfill_id=backfill.id)
                plan = plan_backfill(job, backfill_request)
                definitions = job.settings.get("parameters") or []
                preview = {"parameter": plan.fill[0] if plan.fill else "",
                           "runs": [{"slot": slot, "parameters": parameter_values(
                               effective_job_parameters(definitions, overrides))} for slot, overrides in plan.runs()]}
            except BackfillInvalid as exc:
                form.show_problem(exc)
    return render(request, "backfills/new.html", {"nav": "jobs", "job": job, "form": form, "preview": preview,
                                                  "has_schedule": schedule_zone(job) is not None})


def find_backfill_or_404(backfill_id):
    return get_object_or_404(Backfill.objects.select_related("job", "creator"), id=backfill_id)


def status_context(backfill, can):
    """The status part's context; `can`: what the user may do (its Cancel and Repair buttons
    are in the part, so that they follow the backfill's state without a reload)."""
    rows = slot_rows(backfill)
    for row in rows:
        if row["life_cycle_state"]:
            row["css"] = state_class(row["life_cycle_state"], row["result_state"])
            row["label"] = state_label(row["life_cycle_state"], row["result_state"])
    progress = progress_of(backfill, rows)
    bar = [{"state": state.value, "css": css, "label": label, "count": getattr(progress, state.value),
            "percent": progress.percent(state.value)} for state, css, label in BAR]
    return {"backfill": backfill, "can": can, "rows": rows, "progress": progress, "bar": bar,
            "events": list(backfill.events.order_by("-id")[:EVENTS_SHOWN]), "live": backfill.state == Backfill.State.RUNNING}


@login_required
def backfill_page(request, backfill_id):
    backfill = find_backfill_or_404(backfill_id)
    can = check(request.user, backfill.job_id, Action.VIEW)
    return render(request, "backfills/detail.html", {"nav": "jobs", "job": backfill.job,
                                                     **status_context(backfill, can)})


@login_required
def status(request, backfill_id):
    """The page's status part (progress bar, slots, events), fetched again while the backfill runs."""
    backfill = find_backfill_or_404(backfill_id)
    can = check(request.user, backfill.job_id, Action.VIEW)
    return render(request, "backfills/_status.html", status_context(backfill, can))


@login_required
@require_POST
def cancel(request, backfill_id):
    backfill = find_backfill_or_404(backfill_id)
    check(request.user, backfill.job_id, Action.RUN)
    try:
        canceled = cancel_backfill(backfill, request.user)
        messages.success(request, f"Backfill {backfill.id} canceled, and {len(canceled)} of its run(s).")
    except BackfillRefused as exc:
        messages.error(request, f"The backfill was not canceled: {exc}")
    return redirect("backfills:detail", backfill_id=backfill.id)


@login_required
@require_POST
def repair_failed(request, backfill_id):
    backfill = find_backfill_or_404(backfill_id)
    check(request.user, backfill.job_id, Action.RUN)
    try:
        asked, refused = ask_repairs(backfill, request.user)
        note = f"; {len(refused)} cannot be repaired" if refused else ""
        messages.success(request, f"Repair of {len(asked)} failed run(s) started{note}.")
    except BackfillRefused as exc:
        messages.error(request, f"Nothing was repaired: {exc}")
    return redirect("backfills:detail", backfill_id=backfill.id)


@login_required
def job_card(request, job_id):
    job = find_job_or_404(job_id)
    can = check(request.user, job.id, Action.VIEW)
    backfills = list(job.backfills.select_related("creator").order_by("-id")[:BACKFILLS_ON_CARD])
    entries = [{"backfill": b, "progress": progress_of(b)} for b in backfills]
    return render(request, "backfills/_job_card.html", {"job": job, "can": can, "entries": entries,
                                                        "live": any(b.state == Backfill.State.RUNNING for b in backfills)})
