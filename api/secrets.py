"""The Secrets API, in the shapes of the databricks-sdk's `w.secrets`: scopes (create, delete,
list), secrets (put, delete, list, get) and scope ACLs (put, delete, get, list) under
/api/2.0/secrets/. Rules and storage are vault/; values are base64 in and out, and never in a
list, an error message or the audit log (audit/actions.py redacts string_value and bytes_value).

The reads a task makes with dbutils.secrets (get, list, scopes/list) may also authenticate with
the attempt's secrets credential: it reads as the run's run-as identity while the attempt runs,
and every value it (or the run-as token) reads is recorded for redacting that attempt's output.
"""

import base64
import binascii
from functools import wraps

from api.http import ApiError, api_view, authenticate, invalid, str_param
from runs.attempt_credentials import attempt_of_run_as_token, attempt_of_secrets_credential
from runs.run_as import user_of_running_attempt
from vault import store
from vault.crypto import Unreadable
from vault.rules import SecretRefused, permission_of


def refusals(view):
    """vault's refusals as their Databricks codes."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except SecretRefused as exc:
            raise ApiError(exc.http_status, exc.error_code, exc.message) from None
        except Unreadable as exc:  # the server's key changed: say so rather than a bare 500
            raise ApiError(500, "INTERNAL_ERROR", str(exc)) from None

    return wrapper


def bearer(request):
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else ""


def authenticate_reader(request):
    """`authenticate`, or an attempt's secrets credential; notes which attempt reads, if any."""
    raw = bearer(request)
    attempt_id = attempt_of_secrets_credential(raw) if raw else None
    if attempt_id is not None:
        user = user_of_running_attempt(attempt_id)
        if user is None:
            raise ApiError(401, "UNAUTHENTICATED", "This task's secrets credential is no longer valid: "
                                                   "its attempt has ended")
        request.audit_credential = "secrets credential of a task"
    else:
        user = authenticate(request)
        attempt_id = attempt_of_run_as_token(raw) if raw else None
    request.reading_attempt_id = attempt_id
    return user


def reader_view(view):
    return api_view("GET", authenticator=authenticate_reader)(refusals(view))


def writer_view(view):
    return api_view("POST")(refusals(view))


def scope_param(data):
    return str_param(data, "scope", required=True)


# --- scopes -----------------------------------------------------------------------------------


@writer_view
def create_scope(request, data):
    backend = str_param(data, "scope_backend_type", default="DATABRICKS")
    if backend != "DATABRICKS":
        raise ApiError(400, "BAD_REQUEST", f"scope_backend_type {backend} is not supported by this server: "
                                           f"only DATABRICKS scopes are")
    store.create_scope(scope_param(data), request.user, str_param(data, "initial_manage_principal"))
    return {}


@writer_view
def delete_scope(request, data):
    store.delete_scope(scope_param(data), request.user)
    return {}


@reader_view
def list_scopes(request, data):
    return {"scopes": [{"name": s.name, "backend_type": s.backend_type} for s in store.list_scopes()]}


# --- secrets ----------------------------------------------------------------------------------


def value_of(data):
    """The bytes of exactly one of string_value (UTF-8) or bytes_value (base64)."""
    given = [name for name in ("string_value", "bytes_value") if data.get(name) is not None]
    if len(given) != 1:
        raise invalid("Exactly one of string_value or bytes_value must be given")
    text = str_param(data, given[0])
    if given[0] == "string_value":
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
            raise invalid("string_value must be valid Unicode text") from None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("bytes_value must be base64") from None


@writer_view
def put_secret(request, data):
    scope, key = scope_param(data), str_param(data, "key", required=True)
    store.put_secret(scope, key, value_of(data), request.user)
    return {}


@writer_view
def delete_secret(request, data):
    store.delete_secret(scope_param(data), str_param(data, "key", required=True), request.user)
    return {}


@reader_view
def list_secrets(request, data):
    return {"secrets": [{"key": key, "last_updated_timestamp": updated}
                        for key, updated in store.list_secrets(scope_param(data), request.user)]}


@reader_view
def get_secret(request, data):
    key = str_param(data, "key", required=True)
    value = store.read_secret(scope_param(data), key, request.user, attempt_id=request.reading_attempt_id)
    return {"key": key, "value": base64.b64encode(value).decode()}


# --- ACLs -------------------------------------------------------------------------------------


def acl_dict(acl):
    return {"principal": acl.principal, "permission": acl.permission}


@writer_view
def put_acl(request, data):
    permission = permission_of(str_param(data, "permission", required=True))
    store.put_acl(scope_param(data), str_param(data, "principal", required=True), permission, request.user)
    return {}


@writer_view
def delete_acl(request, data):
    store.delete_acl(scope_param(data), str_param(data, "principal", required=True), request.user)
    return {}


@api_view("GET")
@refusals
def get_acl(request, data):
    return acl_dict(store.get_acl(scope_param(data), str_param(data, "principal", required=True), request.user))


@api_view("GET")
@refusals
def list_acls(request, data):
    return {"items": [acl_dict(acl) for acl in store.list_acls(scope_param(data), request.user)]}
