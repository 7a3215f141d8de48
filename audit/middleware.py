"""Write one audit row for every state-changing request (POST, PUT, PATCH, DELETE), whatever
its outcome: allowed, denied or failed. It wraps the whole site (API, dashboard, admin console),
so no view has to remember it."""

import json
import logging
import re

from django.contrib.messages import constants as message_levels
from django.urls import Resolver404, resolve

from audit.actions import MAX_PARAMS_CHARACTERS, action_of, redacted
from audit.models import AuditEvent
from jobs.spec.documents import readable
from backfills.models import Backfill
from runs.models import Run, TaskRun

log = logging.getLogger(__name__)

CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ID = re.compile(r"[0-9]{1,18}")
TARGETS = ("job_id", "run_id", "task_run_id", "backfill_id", "token_id", "user_id", "group_id")


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in CHANGING_METHODS:
            return self.get_response(request)
        params = request_params(request)  # before the view: a form's body can be read once only
        user = getattr(request, "user", None)
        before = user if user is not None and user.is_authenticated else None  # who signs out
        response = self.get_response(request)
        try:
            record(request, response, params, before)
        except Exception:  # the action happened: an audit failure must not turn it into an error
            log.exception("Could not write the audit row of %s %s; writing it without its target",
                          request.method, request.path)
            try:
                record(request, response, params, before, with_target=False)
            except Exception:
                log.exception("Could not write the audit row of %s %s", request.method, request.path)
        return response


def request_params(request):
    """The request's parameters as the view reads them (the API reads its body as JSON whatever
    the content type says), secrets redacted, at most MAX_PARAMS_CHARACTERS of them."""
    content_type = request.content_type or ""
    try:
        form = content_type.startswith("multipart/form-data")  # an upload's file parts are no parameters
        if not form and (request.path.startswith("/api/") or content_type.startswith("application/json")):
            params = json.loads(request.body or b"{}")
        else:
            params = {key: values if len(values) > 1 else values[0] for key, values in request.POST.lists()}
        params = redacted(params if isinstance(params, dict) else {"body": params})
    except Exception:  # a malformed or too-large body: the view answers it; the log keeps that it came
        params = {"unreadable_body": True}
    size = len(json.dumps(params, default=str))
    if size > MAX_PARAMS_CHARACTERS:
        params = {"truncated": True, "characters": size,
                  "keys": [str(key)[:100] for key in list(params)[:50]] if isinstance(params, dict) else []}
    return params


def record(request, response, params, before=None, with_target=True):
    try:
        match = resolve(request.path_info)
        url_name, namespace, kwargs = match.url_name, match.namespace, match.kwargs
    except Resolver404:
        url_name, namespace, kwargs = None, "", {}
    service, action = action_of(url_name, namespace, request.method)
    user = getattr(request, "user", None)
    if (user is None or not user.is_authenticated) and before is not None:
        user = before
    signed_in = user is not None and user.is_authenticated
    user_name = user.get_username() if signed_in else str(params.get("username", ""))[:200] if action == "login" else ""
    job_id, target = target_of(kwargs, params) if with_target else (None, "")
    # readable: a NUL or a lone surrogate in what was sent (refused by the view) cannot be stored by
    # PostgreSQL; the row keeps U+FFFD in its place.
    AuditEvent.objects.create(
        service_name=service, action_name=action[:80], user_id=user.pk if signed_in else None,
        user_name=readable(user_name), credential=getattr(request, "audit_credential", "session" if signed_in else ""),
        job_id=job_id, target=target, request_params=readable(params), method=request.method,
        path=readable(request.path[:500]), status_code=response.status_code, outcome=outcome_of(request, response),
        error_message=readable(error_of(response)), source_ip_address=request.META.get("REMOTE_ADDR", "")[:64],
        user_agent=readable(request.headers.get("User-Agent", "")[:500]))


def target_of(kwargs, params):
    """(job id, "kind id") of what the request acts on."""
    found = {**{k: v for k, v in params.items() if k in TARGETS}, **{k: v for k, v in kwargs.items() if k in TARGETS}}
    for kind in TARGETS:
        value = found.get(kind)
        if value is None or not ID.fullmatch(str(value)):  # ASCII digits that fit a bigint, nothing else
            continue
        number = int(value)
        job_id = number if kind == "job_id" else None
        if kind == "run_id":
            job_id = (Run.objects.filter(id=number).values_list("job_id", flat=True).first()
                      or TaskRun.objects.filter(id=number).values_list("run__job_id", flat=True).first())
        elif kind == "task_run_id":
            job_id = TaskRun.objects.filter(id=number).values_list("run__job_id", flat=True).first()
        elif kind == "backfill_id":
            job_id = Backfill.objects.filter(id=number).values_list("job_id", flat=True).first()
        return job_id, f"{kind.removesuffix('_id').replace('_', ' ')} {number}"
    return None, ""


def outcome_of(request, response):
    status = response.status_code
    if status in (401, 403, 429):
        return AuditEvent.Outcome.DENIED
    if status >= 400:
        return AuditEvent.Outcome.FAILED
    if status == 200 and not request.path.startswith("/api/") and "text/html" in response.get("Content-Type", ""):
        return AuditEvent.Outcome.FAILED  # a form shown again: its input was refused
    storage = getattr(request, "_messages", None)
    queued = getattr(storage, "_queued_messages", [])
    if any(message.level >= message_levels.ERROR for message in queued):
        return AuditEvent.Outcome.FAILED  # a redirect that carries "did not start: ..."
    return AuditEvent.Outcome.OK


def error_of(response):
    if response.status_code < 400 or "application/json" not in response.get("Content-Type", ""):
        return ""
    try:
        return str(json.loads(response.content).get("message", ""))[:2000]
    except (ValueError, AttributeError):
        return ""
