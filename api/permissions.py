"""The Permissions API for jobs, in the shapes of w.jobs.get_permissions, set_permissions,
update_permissions and get_permission_levels: GET, PUT (replace) and PATCH (merge) of
/api/2.0/permissions/jobs/<job_id>, and GET .../permissionLevels."""

import re

from api.http import INT64_MAX, api_view, invalid
from api.jobs import find_job
from jobs.permissions import acl_body, change_acl, check
from jobs.spec.access import DESCRIPTIONS, Action


def job_named(job_id):
    """The job of a permissions path; runs/submit's hidden jobs have no permissions object."""
    if not re.fullmatch(r"[0-9]{1,19}", job_id) or int(job_id) > INT64_MAX:
        raise invalid(f"{job_id!r} is not a job id")
    return find_job(int(job_id))


def acl_entries(data):
    entries = data.get("access_control_list", [])
    if not isinstance(entries, list):
        raise invalid("access_control_list must be a list")
    return entries


@api_view("GET")
def get_permissions(request, data, job_id):
    job = job_named(job_id)
    check(request.user, job.id, Action.VIEW)
    return acl_body(job)


def changer(replace):
    def change(request, data, job_id):
        job = job_named(job_id)
        check(request.user, job.id, Action.MANAGE)
        change_acl(job, acl_entries(data), user=request.user, replace=replace)
        return acl_body(job)

    return change


set_permissions = api_view("PUT")(changer(replace=True))
update_permissions = api_view("PATCH")(changer(replace=False))


@api_view("GET")
def get_permission_levels(request, data, job_id):
    job = job_named(job_id)
    check(request.user, job.id, Action.VIEW)
    return {"permission_levels": [{"permission_level": level, "description": text}
                                  for level, text in DESCRIPTIONS.items()]}
