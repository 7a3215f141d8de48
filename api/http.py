"""What every Jobs API view shares: authentication, JSON in and out, errors, typed readers, paging.

Who may do what, for the whole API:

- every call needs an active user: `Authorization: Bearer <token>` (an ApiToken), or the session
  of a user signed in to the web UI, so the API can be browsed; a session POST must pass CSRF;
- what a user may do with a job and its runs is the job's access control list (CAN_VIEW,
  CAN_MANAGE_RUN, CAN_MANAGE, IS_OWNER; admins may everything): one rule, jobs/spec/access.py,
  asked through jobs/permissions.py by every view here and every page; lists show only what
  the caller may view; a refusal is 403 PERMISSION_DENIED with the Databricks message.

Errors answer `{"error_code", "message"}` with the Databricks code and HTTP status.
"""

import base64
import binascii
import functools
import json
import logging
from functools import wraps
from pathlib import Path

import yaml

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import OperationalError
from django.http import HttpResponseBase, HttpResponseNotAllowed, JsonResponse
from django.http.request import RawPostDataException
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from jobs.models import ApiToken
from jobs.permissions import caller_of
from runs.run_as import user_of_run_as_token
from jobs.spec.access import AclInvalid, OwnerChangeDenied
from jobs.spec.documents import DocumentRefused, bounded_int, check_document, parse_json
from jobs.spec.settings import SettingsInvalid

log = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1
BAD_REQUEST_DETAIL = "type.googleapis.com/google.rpc.BadRequest"


class ApiError(Exception):
    """An answer other than 200: raise it anywhere below an api_view."""

    def __init__(self, http_status, error_code, message, details=None):
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message
        self.details = details

    def response(self):
        body = {"error_code": self.error_code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return JsonResponse(body, status=self.http_status)


def invalid(message):
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def invalid_state(message):
    return ApiError(400, "INVALID_STATE", message)


def does_not_exist(kind, identifier):
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"{kind} {identifier} does not exist.")


def settings_error(exc):
    """SettingsInvalid as a 400: every problem in `details`, once as {path, message} and once in
    google.rpc.BadRequest form, which the databricks-sdk parses into `get_error_details()`."""
    details = [{"path": p.path, "message": p.message} for p in exc.problems]
    details.append({
        "@type": BAD_REQUEST_DETAIL,
        "field_violations": [{"field": p.path, "description": p.message} for p in exc.problems],
    })
    return ApiError(400, "INVALID_PARAMETER_VALUE", str(exc), details)


# --- the decorators ----------------------------------------------------------------------


def api_view(method, authenticator=None, body=None):
    """Authenticate (with `authenticator(request)` -> user if given), check the method, read the
    query (GET, DELETE) or JSON body (POST, PATCH, PUT; `body(request)` -> dict if given) into a
    dict, call `view(request, data, **kwargs)` and answer its dict as JSON; errors become JSON too."""

    def decorate(view):
        @csrf_exempt  # Bearer calls carry no cookie; session calls are checked in authenticate()
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                request.user = (authenticator or authenticate)(request)
                if request.method != method:
                    raise ApiError(405, "BAD_REQUEST",
                                   f"{request.path} accepts {method} requests, not {request.method}")
                data = (body or read_json_body)(request) if method in ("POST", "PATCH", "PUT") else request.GET.dict()
                try:
                    check_document(data)
                except DocumentRefused as exc:
                    raise invalid(f"Request field {exc}" if exc.path else f"The request {exc.message}") from None
                answer = view(request, data, *args, **kwargs)
                return answer if isinstance(answer, HttpResponseBase) else JsonResponse(answer)  # a download
            except ApiError as exc:
                return exc.response()
            except SettingsInvalid as exc:
                return settings_error(exc).response()
            except (PermissionDenied, OwnerChangeDenied) as exc:
                return ApiError(403, "PERMISSION_DENIED", str(exc) or "Permission denied").response()
            except AclInvalid as exc:
                return invalid(str(exc)).response()
            except OperationalError:
                # The database is locked, restarting or unreachable: the SDK retries a 503.
                log.warning("API call %s %s met a database error", request.method, request.path, exc_info=True)
                response = ApiError(503, "TEMPORARILY_UNAVAILABLE", "The database is busy; try again").response()
                response["Retry-After"] = "1"
                return response
            except Exception:
                log.exception("API call %s %s failed", request.method, request.path)
                return ApiError(500, "INTERNAL_ERROR", "Internal error; the server log has the details").response()

        return wrapper

    return decorate


def methods(**views):
    """One URL, a view per HTTP method (each an api_view of its own, which checks CSRF itself
    for session callers)."""
    @csrf_exempt
    def dispatch(request, *args, **kwargs):
        view = views.get(request.method.lower())
        if view is None:
            return HttpResponseNotAllowed([m.upper() for m in views])
        return view(request, *args, **kwargs)
    return dispatch


def client_errors(*exception_types):
    """Answer these domain exceptions with 400 and their message; an exception that carries an
    `error_code` (RepairRefused: INVALID_STATE) keeps it, others are INVALID_PARAMETER_VALUE.
    Stack it below api_view."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except exception_types as exc:
                raise ApiError(400, getattr(exc, "error_code", "INVALID_PARAMETER_VALUE"), str(exc)) from exc

        return wrapper

    return decorate


def authenticate(request):
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise ApiError(401, "UNAUTHENTICATED", "The Authorization header must be 'Bearer <token>'")
        token = ApiToken.find(raw.strip())
        if token is not None:
            request.audit_credential = f"token {token.prefix}"  # which token, for the audit log
            return token.user
        user = user_of_run_as_token(raw.strip())
        if user is None:
            raise ApiError(401, "UNAUTHENTICATED",
                           "Invalid access token: it is unknown, revoked, or its user is inactive")
        request.audit_credential = "run-as token of a task"
        return user
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if rejected is not None:
            raise ApiError(403, "PERMISSION_DENIED", "CSRF check failed: send the CSRF token, or use a Bearer token")
        return user
    raise ApiError(401, "UNAUTHENTICATED", "Credentials are required: send 'Authorization: Bearer <token>'")


def read_json_body(request):
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, "BAD_REQUEST", f"The request body is larger than the server's limit of "
                                           f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes")
    except RawPostDataException:  # a multipart form, already read for its CSRF token
        raise ApiError(400, "MALFORMED_REQUEST", "The request body must be JSON, not a form")
    return json_object_of(raw)


def json_object_of(raw):
    """The JSON object a request body holds ({} for an empty one); MALFORMED_REQUEST otherwise."""
    if not raw.strip():
        return {}
    try:
        data = parse_json(raw)
    except DocumentRefused as exc:
        raise ApiError(400, "MALFORMED_REQUEST", f"The request body {exc.message}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise ApiError(400, "MALFORMED_REQUEST", f"The request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        raise ApiError(400, "MALFORMED_REQUEST",
                       f"The request body must be a JSON object, not {json_type(data)}")
    return data


def json_type(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object", type(None): "null"}[type(value)]


# --- typed readers: one rule for query strings and JSON bodies -----------------------------
# Integers may come as JSON numbers or decimal strings (proto3 JSON sends int64 as strings),
# booleans as JSON booleans or "true"/"false"; a boolean is never an integer.

MISSING = object()


def _value(data, name, required):
    value = data.get(name, MISSING)
    if value is MISSING or value is None:
        if required:
            raise invalid(f"Missing required field: {name}")
        return MISSING
    return value


def int_param(data, name, *, required=False, default=None, low=None, high=None):
    value = _value(data, name, required)
    if value is MISSING:
        return default
    try:
        return bounded_int(value, name, low=-INT64_MAX - 1 if low is None else low,
                           high=INT64_MAX if high is None else high)
    except DocumentRefused as exc:
        raise invalid(str(exc)) from None


def id_param(data, name, *, required=True):
    """A job, run or repair id: a positive int64."""
    return int_param(data, name, required=required, low=1)


def bool_param(data, name, *, default=False):
    value = _value(data, name, False)
    if value is MISSING:
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false, not {json_type(value)}: {value!r}")
    return value


def str_param(data, name, *, required=False, default=None, choices=None, max_length=None):
    value = _value(data, name, required)
    if value is MISSING:
        return default
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string, not {json_type(value)}")
    if choices is not None and value not in choices:
        raise invalid(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    if max_length is not None and len(value) > max_length:
        raise invalid(f"{name} must be at most {max_length} characters long")
    return value


def object_param(data, name, *, required=False):
    value = _value(data, name, required)
    if value is MISSING:
        return None
    if not isinstance(value, dict):
        raise invalid(f"{name} must be an object, not {json_type(value)}")
    return value


def str_list_param(data, name):
    value = _value(data, name, False)
    if value is MISSING:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"{name} must be an array of strings")
    return value


# --- paging ------------------------------------------------------------------------------
# Tokens are opaque to clients: URL-safe base64 of a small JSON object. A list page remembers
# the id next to it (keyset paging, stable while rows are added); an object page its number.


def encode_page_token(position):
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def page_token_position(token):
    """What encode_page_token put in `token`, or None if it is not one of its tokens."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None


def not_our_page_token(token):
    return invalid(f"page_token {token!r} is not a token this server handed out")


def decode_page_token(token, *keys):
    """The position inside `token`, which must hold exactly one of `keys` with an int64 >= 0."""
    position = page_token_position(token)
    try:
        [(key, value)] = position.items()
    except (ValueError, AttributeError):
        key = value = None
    if key not in keys or isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise not_our_page_token(token)
    return position


def keyset_page(queryset, *, limit, page_token=None, offset=0):
    """One page of `queryset`, newest (highest id) first.

    Returns (rows, next_page_token, prev_page_token); a token is None where there is no page,
    so the last page has no next_page_token. `offset` (deprecated in the API) applies only
    without a page_token."""
    if page_token:
        position = decode_page_token(page_token, "after", "before")
        if "after" in position:
            rows = list(queryset.filter(id__lt=position["after"]).order_by("-id")[:limit])
        else:
            rows = list(queryset.filter(id__gt=position["before"]).order_by("id")[:limit])[::-1]
    else:
        rows = list(queryset.order_by("-id")[offset:offset + limit])
    if not rows:
        return rows, None, None
    newer = queryset.filter(id__gt=rows[0].id).exists()
    older = queryset.filter(id__lt=rows[-1].id).exists()
    return (
        rows,
        encode_page_token({"after": rows[-1].id}) if older else None,
        encode_page_token({"before": rows[0].id}) if newer else None,
    )


OBJECT_PAGE_SIZE = 100


def list_page_body(key, items, next_token, prev_token):
    """A jobs/list or runs/list answer. The last page omits next_page_token: the SDK pages on it."""
    body = {key: items, "has_more": next_token is not None}
    if next_token:
        body["next_page_token"] = next_token
    if prev_token:
        body["prev_page_token"] = prev_token
    return body


def object_page_number(data):
    """The page of a job's or run's arrays (tasks, parameters...) that `page_token` asks for."""
    token = str_param(data, "page_token")
    return decode_page_token(token, "page")["page"] if token else 0


def slice_page(items, page):
    """(this page's items, whether a later page has more)."""
    start = page * OBJECT_PAGE_SIZE
    return items[start:start + OBJECT_PAGE_SIZE], len(items) > start + OBJECT_PAGE_SIZE


def next_object_page_token(page):
    return encode_page_token({"page": page + 1})


# --- endpoints that are not the Jobs API -------------------------------------------------


def databricks_config(request):
    """GET /.well-known/databricks-config, read by the databricks-sdk when it starts (no auth).

    No oidc_endpoint: the SDK then stays with the personal access token it was given."""
    return JsonResponse({"workspace_id": "1", "oidc_endpoint": ""})


def require_admin(request, what):
    """403 unless the caller is a workspace admin; `what` completes "only admins may ..."."""
    if not caller_of(request.user).is_admin:
        raise ApiError(403, "PERMISSION_DENIED",
                       f"User {request.user.get_username()} is not an admin: only admins may {what}")


OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.yaml")


@functools.cache
def openapi_document():
    return yaml.safe_load(OPENAPI_DOCUMENT.read_text())


def openapi(request):
    """GET /api/2.2/openapi.json: the API's OpenAPI document, read from api/openapi.yaml.

    Public, like /.well-known/databricks-config: it describes the shapes of the API, which are
    published anyway, and holds no data; clients and tools can read it before they have a token."""
    if request.method != "GET":
        return ApiError(405, "BAD_REQUEST", f"{request.path} accepts GET requests, not {request.method}").response()
    return JsonResponse(openapi_document())


@csrf_exempt
def endpoint_not_found(request, *args, **kwargs):
    return ApiError(404, "ENDPOINT_NOT_FOUND", f"No API endpoint {request.method} {request.path}").response()
