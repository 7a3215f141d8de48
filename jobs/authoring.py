"""Job authoring pages: the form editor, the YAML/JSON editor and the version history.

Both editors validate exactly as the Jobs API does (jobs/spec/settings.py, then the checks that
need the server's state) and save every change as a new immutable JobVersion.
"""

import difflib
import zoneinfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs.checks import check_settings_against_server
from jobs.forms import JobEditor, SourceForm
from jobs.settings_text import settings_as_text
from jobs.models import Job
from jobs.permissions import AccessDenied, check, jobs_where, may
from jobs.spec.access import Action
from jobs.spec.deployment import LOCKED_REASON, is_ui_locked
from jobs.spec.task_types import unsupported_tasks
from jobs.query_params import query_int
from jobs.spec.settings import INT32_MAX, SettingsInvalid, validate_job_settings
from jobs.pages import find_job_or_404, live_jobs
from warehouses.catalog import choices as warehouse_choices

VERSIONS_PER_PAGE = 50
RUN_JOB_SUGGESTIONS = 500  # jobs offered in a run_job_task's job id field
FULL_DIFF_CONTEXT = 1_000_000
STARTER_SETTINGS = {"name": "New job", "tasks": [{"task_key": "hello", "shell_command_task": {"command": "echo hello"}}]}
DIFF_LINE_KINDS = {"+": "add", "-": "del", "@": "hunk"}


def new_job_for(user):
    return Job(kind=Job.Kind.JOB, creator=user)


def validated(settings, job, user):
    """The settings as the API would store them; raises SettingsInvalid listing every problem."""
    return check_settings_against_server(validate_job_settings(settings), job if job.pk else None, user)


def save_and_show(request, job, settings):
    if job.pk is not None:  # checked by the views already; kept here so no way in can skip it
        check(request.user, job.id, Action.MANAGE)
    version = job.save_version(settings, request.user)
    messages.success(request, f"Saved “{job.name}” as version {version.number}.")
    return redirect("jobs:detail", job_id=job.id)


def page_context(job, tab, user):
    """Breadcrumb, title and the Form / YAML / Versions tabs shared by the authoring pages."""
    can_manage = job.pk is None or may(user, job.id, Action.MANAGE)
    if job.pk is None:
        tabs = [("form", "Form", reverse("jobs:new")), ("source", "YAML / JSON", reverse("jobs:new_source"))]
    else:
        tabs = [("form", "Form", reverse("jobs:edit", args=[job.id])),
                ("source", "YAML / JSON", reverse("jobs:edit_source", args=[job.id])),
                ("versions", "Versions", reverse("jobs:versions", args=[job.id]))]
    return {"nav": "jobs", "job": job, "is_new": job.pk is None, "can_manage": can_manage,
            "locked_reason": locked_reason(job),
            "tabs": [{"label": label, "url": url, "active": name == tab} for name, label, url in tabs
                     if can_manage or name == "versions"],
            "source_url": tabs[1][2],
            "cancel_url": reverse("jobs:list") if job.pk is None else reverse("jobs:detail", args=[job.id])}


# --- the form editor --------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def new_job(request):
    return edit_with_form(request, new_job_for(request.user))


def find_job_to_edit(request, job_id):
    """The job, if this user may change it; 403 otherwise (the API's rule: jobs/permissions.py).
    A job a bundle locked (edit_mode UI_LOCKED) is shown, and its edits refused: its source is
    the bundle; jobs/update and jobs/reset (how the bundle redeploys) still change it."""
    job = find_job_or_404(job_id)
    check(request.user, job.id, Action.MANAGE)
    if request.method == "POST" and locked_reason(job):
        raise AccessDenied(LOCKED_REASON)
    return job


def locked_reason(job):
    return LOCKED_REASON if job.pk is not None and is_ui_locked(job.settings) else ""


@login_required
@require_POST
def disconnect_from_source(request, job_id):
    """"Disconnect from source", as Databricks' UI: the job becomes editable here (a new version
    with edit_mode EDITABLE); its deployment stays, and the bundle's next deploy locks it again."""
    job = find_job_or_404(job_id)
    check(request.user, job.id, Action.MANAGE)
    if not locked_reason(job):
        messages.info(request, "This job is not locked: it can be edited already.")
        return redirect("jobs:detail", job_id=job.id)
    version = job.save_version({**job.settings, "edit_mode": "EDITABLE"}, request.user)
    messages.success(request, f"Disconnected “{job.name}” from its bundle (version {version.number}): "
                              "it can be edited here; the bundle's next deploy locks it again.")
    return redirect("jobs:detail", job_id=job.id)


@login_required
@require_http_methods(["GET", "POST"])
def edit_job(request, job_id):
    return edit_with_form(request, find_job_to_edit(request, job_id))


def edit_with_form(request, job):
    editor = JobEditor(job.settings, request.POST if request.method == "POST" else None)
    if request.method == "POST" and editor.is_valid():
        try:
            settings = validated(editor.settings(), job, request.user)
        except SettingsInvalid as invalid:
            editor.show_problems(invalid.problems)
        else:
            return save_and_show(request, job, settings)
    jobs_to_run = jobs_where(live_jobs(), request.user, Action.RUN, whole=True).exclude(id=job.pk).order_by("name", "id").values_list("id", "name")
    return render(request, "jobs/edit.html", {
        **page_context(job, "form", request.user), "editor": editor,
        "time_zones": sorted(zoneinfo.available_timezones()),
        "warehouses": warehouse_choices(),
        "jobs_to_run": jobs_to_run[:RUN_JOB_SUGGESTIONS],
        "unsupported": unsupported_tasks(editor.current or {}),
    })


# --- the YAML / JSON editor -------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def new_job_source(request):
    return edit_source(request, new_job_for(request.user))


@login_required
@require_http_methods(["GET", "POST"])
def edit_job_source(request, job_id):
    return edit_source(request, find_job_to_edit(request, job_id))


def edit_source(request, job):
    if request.method == "GET":
        fmt = "json" if request.GET.get("format") == "json" else "yaml"
        settings = version_settings(job, query_int(request, "version", low=1)) or job.settings or STARTER_SETTINGS
        form = SourceForm(initial={"format": fmt, "source": settings_as_text(settings, fmt)})
    else:
        form = SourceForm(request.POST)
        convert_to = request.POST.get("convert")
        if form.is_valid() and convert_to in ("yaml", "json"):
            # Switching format keeps what was typed, re-written in the other format; nothing is saved.
            form = SourceForm(initial={"format": convert_to,
                                       "source": settings_as_text(form.cleaned_data["settings"], convert_to)})
        elif form.is_valid():
            try:
                settings = validated(form.cleaned_data["settings"], job, request.user)
            except SettingsInvalid as invalid:
                form.show_problems(invalid.problems)
            else:
                return save_and_show(request, job, settings)
    return render(request, "jobs/source.html", {
        **page_context(job, "source", request.user), "form": form, "format": form["format"].value() or "yaml"})


def version_settings(job, number):
    """The settings of version `number` (to restore it from the history), or None."""
    if job.pk is None or number is None:
        return None
    version = job.versions.filter(number=number).first()
    if version is None:
        raise Http404(f"Job {job.id} has no version {number}")
    return version.settings


# --- the version history ----------------------------------------------------------------


@login_required
@require_GET
def job_versions(request, job_id):
    job = find_job_or_404(job_id)
    check(request.user, job.id, Action.VIEW)
    versions = job.versions.select_related("created_by").defer("settings").order_by("-number")
    page = Paginator(versions, VERSIONS_PER_PAGE).get_page(request.GET.get("page"))
    latest = job.current_version.number if job.current_version_id else 0
    new_number = query_int(request, "new", latest, high=INT32_MAX)
    old_number = query_int(request, "old", max(new_number - 1, 0), high=INT32_MAX)
    compared = {v.number: v for v in job.versions.filter(number__in=[old_number, new_number])}
    missing = {new_number, old_number} - set(compared) - {0}
    if missing:
        raise Http404(f"Job {job.id} has no version {min(missing)}")
    full = request.GET.get("full") == "1"
    diff = settings_diff(compared.get(old_number), compared.get(new_number), full) if new_number else []
    return render(request, "jobs/versions.html", {
        **page_context(job, "versions", request.user), "page": page, "latest": latest, "old_number": old_number,
        "new_number": new_number, "diff": diff, "full": full,
        "added": sum(kind == "add" for kind, _ in diff), "removed": sum(kind == "del" for kind, _ in diff)})


def settings_diff(old, new, full=False):
    """(kind, line) pairs of a unified diff between two versions' settings as YAML; `old` may be
    None (the first version). Kinds: meta, hunk, add, del, same."""
    lines = difflib.unified_diff(
        settings_as_text(old.settings).splitlines() if old else [],
        settings_as_text(new.settings).splitlines() if new else [],
        f"version {old.number}" if old else "(nothing)", f"version {new.number}" if new else "(nothing)",
        n=FULL_DIFF_CONTEXT if full else 3, lineterm="")
    # The first two lines name the versions; a removed line that starts with "--" is not one.
    return [("meta" if i < 2 else DIFF_LINE_KINDS.get(line[:1], "same"), line) for i, line in enumerate(lines)]
