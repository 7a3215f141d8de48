"""The job page's Permissions dialog: grant a level to a user, group or service principal, or
take a grant away. The same rule and the same code as the Permissions API (jobs/permissions.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from jobs.pages import find_job_or_404
from jobs.permissions import change_acl, check, revoke
from jobs.spec.access import PRINCIPAL_KINDS, AclInvalid, Action, OwnerChangeDenied


@login_required
@require_POST
def change_permissions(request, job_id):
    job = find_job_or_404(job_id)
    check(request.user, job.id, Action.MANAGE)
    kind, name = request.POST.get("kind", ""), request.POST.get("principal", "").strip()
    try:
        if kind not in PRINCIPAL_KINDS or not name:
            raise AclInvalid("Name a user, group or service principal")
        if request.POST.get("action") == "revoke":
            revoke(job, kind, name, user=request.user)
            messages.success(request, f"Removed the permission of {name}.")
        else:
            level = request.POST.get("level", "")
            change_acl(job, [{kind: name, "permission_level": level}], user=request.user, replace=False)
            messages.success(request, f"{name} now has {level} on this job.")
    except (AclInvalid, OwnerChangeDenied) as exc:
        messages.error(request, f"Permissions unchanged: {exc}")
    return redirect("jobs:detail", job_id=job.id)
