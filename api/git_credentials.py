"""The Git credentials API, in the shapes of the databricks-sdk's `w.git_credentials`: create, list,
get, update (PATCH) and delete under /api/2.0/git-credentials, each on the caller's own
credentials. One per provider per user; the personal access token is stored encrypted (vault/)
and never answered, listed or logged (audit/actions.py redacts fields named *token*). A run's
worker fetches its job's git_source with the run-as identity's credential for that provider."""

from api.http import api_view, int_param, invalid, methods, str_param
from api.secrets import refusals
from jobs.spec.git_source import GIT_PROVIDERS, provider_name
from vault import git_credentials as store

MAX_TOKEN_CHARS = 4096
MAX_FIELD_CHARS = 255


def provider_param(data):
    given = str_param(data, "git_provider", required=True)
    found = provider_name(given)
    if found is None:
        raise invalid(f"git_provider must be one of {', '.join(GIT_PROVIDERS)} (in any case), not {given!r}")
    return found


def own_principal(request, data):
    """principal_id names the caller or nobody: managing a service principal's is not supported."""
    principal = int_param(data, "principal_id")
    if principal is not None and principal != request.user.id:
        raise invalid("principal_id: this server manages only the caller's own Git credentials")


def fields_of(data, *, for_update=False):
    token = str_param(data, "personal_access_token", max_length=MAX_TOKEN_CHARS)
    if token is not None and not token.strip():
        raise invalid("personal_access_token must not be empty")
    fields = {name: str_param(data, name, max_length=MAX_FIELD_CHARS) for name in ("git_username", "git_email", "name")}
    if not for_update:
        fields = {name: value or "" for name, value in fields.items()}
    return token, fields


@api_view("POST")
@refusals
def create(request, data):
    own_principal(request, data)
    provider = provider_param(data)
    token, fields = fields_of(data)
    if token is None:
        raise invalid("personal_access_token is required: it is what git authenticates with")
    return store.credential_info(store.create_credential(request.user, provider, token=token, **fields))


@api_view("GET")
@refusals
def list_credentials(request, data):
    own_principal(request, data)
    rows = request.user.git_credentials.order_by("id")
    return {"credentials": [store.credential_info(row) for row in rows]}


@api_view("GET")
@refusals
def get(request, data, credential_id):
    own_principal(request, data)
    return store.credential_info(store.own_credential(request.user, credential_id))


@api_view("PATCH")
@refusals
def update(request, data, credential_id):
    own_principal(request, data)
    token, fields = fields_of(data, for_update=True)
    store.update_credential(request.user, credential_id, provider_param(data), token=token, **fields)
    return {}


@api_view("DELETE")
@refusals
def delete(request, data, credential_id):
    own_principal(request, data)
    store.delete_credential(request.user, credential_id)
    return {}


collection = methods(get=list_credentials, post=create)
one = methods(get=get, patch=update, delete=delete)
