"""The Audit page, for admins: who did what, filtered by user, action, job and time, paged."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from audit.query import BadFilter, filtered, page
from jobs.permissions import caller_of
from jobs.query_params import query_int


@login_required
def audit_page(request):
    if not caller_of(request.user).is_admin:
        raise PermissionDenied("The audit log is for workspace admins")
    wanted = {name: request.GET.get(name, "").strip() for name in ("user", "action", "since", "until")}
    job_id = query_int(request, "job")
    problem, rows, before = "", [], None
    try:
        rows, before = page(filtered(wanted["user"], wanted["action"], job_id, wanted["since"], wanted["until"],
                                     before=query_int(request, "before")))
    except BadFilter as exc:
        problem = str(exc)
    more = {**{k: v for k, v in wanted.items() if v}, **({"job": job_id} if job_id is not None else {})}
    return render(request, "audit/list.html", {"nav": "audit", "rows": rows, "before": before, "wanted": wanted,
                                               "job": job_id, "problem": problem, "more": more},
                  status=400 if problem else 200)
