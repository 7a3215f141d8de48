"""Personal access tokens over the Token API (`w.tokens`: create, list, delete your own) and the
Token Management API (`w.token_management`: admins list, get and revoke anyone's, and create a
token on behalf of a service principal, the way automation gets one). Only a token's hash is
stored; its value is answered once, at creation. A revoked or expired token, or one of a
deactivated or deleted user, stops working at once."""

import uuid

from django.utils import timezone

from api.http import ApiError, api_view, int_param, str_param
from jobs.models import ApiToken, ServicePrincipal, acts_for_a_task
from jobs.permissions import caller_of

MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


def _ms(at):
    return int(at.timestamp() * 1000) if at else -1  # Databricks: -1 for "never expires"


def public_info(token):
    return {"token_id": str(token.id), "comment": token.comment, "creation_time": _ms(token.created_at),
            "expiry_time": _ms(token.expires_at)}


def management_info(token):
    return {**public_info(token), "created_by_id": token.user_id, "created_by_username": token.user.get_username(),
            "owner_id": token.user_id, "workspace_id": 0,
            **({"last_used_day": _ms(token.last_used_at)} if token.last_used_at else {})}


def _new_token(data, user):
    comment = str_param(data, "comment", default="", max_length=200)
    lifetime = int_param(data, "lifetime_seconds", low=1, high=MAX_LIFETIME_SECONDS)
    return ApiToken.issue(user, comment, lifetime_seconds=lifetime)


def refuse_task_tokens(request):
    if acts_for_a_task(request.user):
        raise ApiError(403, "PERMISSION_DENIED", "A task's run-as token cannot make or revoke tokens: "
                                                 "they would outlive the task")


@api_view("POST")
def create_token(request, data):
    refuse_task_tokens(request)
    token, raw = _new_token(data, request.user)
    return {"token_value": raw, "token_info": public_info(token)}


@api_view("GET")
def list_tokens(request, data):
    return {"token_infos": [public_info(t) for t in ApiToken.valid().filter(user=request.user).order_by("id")]}


@api_view("POST")
def delete_token(request, data):
    refuse_task_tokens(request)
    token_id = str_param(data, "token_id", required=True)
    revoked = _revoke(ApiToken.objects.filter(user=request.user), token_id)
    if not revoked:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Token {token_id} does not exist")
    return {}


def _revoke(tokens, token_id):
    if not str(token_id).isdigit():
        return 0
    return tokens.filter(id=int(token_id), revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- token management: admins ------------------------------------------------------------------


def _admin(request):
    if not caller_of(request.user).is_admin:
        raise ApiError(403, "PERMISSION_DENIED", f"User {request.user.get_username()} is not an admin: only admins "
                                                 "manage other identities' tokens")


@api_view("GET")
def manage_list_tokens(request, data):
    _admin(request)
    tokens = ApiToken.valid().select_related("user")
    if created_by_id := int_param(data, "created_by_id", low=1):
        tokens = tokens.filter(user_id=created_by_id)
    if created_by := str_param(data, "created_by_username"):
        tokens = tokens.filter(user__username=created_by)
    return {"token_infos": [management_info(t) for t in tokens.order_by("id")]}


def _managed(token_id):
    token = (ApiToken.objects.select_related("user").filter(id=int(token_id), revoked_at__isnull=True).first()
             if str(token_id).isdigit() else None)
    if token is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Token {token_id} does not exist")
    return token


@api_view("GET")
def manage_get_token(request, data, token_id):
    _admin(request)
    return {"token_info": management_info(_managed(token_id))}


@api_view("DELETE")
def manage_delete_token(request, data, token_id):
    _admin(request)
    _revoke(ApiToken.objects.filter(id=_managed(token_id).id), token_id)
    return {}


@api_view("POST")
def create_on_behalf_of(request, data):
    """A token for a service principal (by its application id), made by an admin."""
    _admin(request)
    application_id = str_param(data, "application_id", required=True)
    principal = ServicePrincipal.objects.select_related("user").filter(
        application_id=application_id if _is_uuid(application_id) else None).first()
    if principal is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Service principal {application_id} does not exist")
    token, raw = _new_token(data, principal.user)
    return {"token_value": raw, "token_info": management_info(token)}


def _is_uuid(text):
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True

