"""The workspace's identities over SCIM 2.0, in the shapes the databricks-sdk reads
(`w.current_user.me()`, `w.users`, `w.groups`, `w.service_principals`) under
/api/2.0/preview/scim/v2/.

Django users are the users, Django groups the groups, and a service principal is a user with a
ServicePrincipal row (no password: tokens only; its user name is its application id). Anyone
signed in may read them; creating, changing and deleting them is for admins (superusers and
members of the `admins` group). Filters: `attr eq|ne|co|sw "value"` joined by `and` / `or`.
"""

import re
import uuid
from functools import reduce

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q

from api.http import ApiError, api_view, int_param, invalid, require_admin, str_param
from jobs.models import ServicePrincipal

SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MAX_COUNT = 10000
User = get_user_model()


# --- shapes ------------------------------------------------------------------------------------


def user_dict(user):
    email = user.email or (user.username if "@" in user.username else "")  # Databricks user names are emails
    name = {k: v for k, v in (("givenName", user.first_name), ("familyName", user.last_name)) if v}
    body = {"id": str(user.id), "userName": user.username, "displayName": display_name(user),
            "active": user.is_active, "groups": _groups_of(user), "schemas": [f"{SCHEMA}User"],
            "emails": [{"value": email, "type": "work", "primary": True}] if email else []}
    if name:
        body["name"] = name
    return body


def service_principal_dict(user):
    return {"id": str(user.id), "applicationId": str(user.service_principal.application_id),
            "displayName": user.first_name or str(user.service_principal.application_id), "active": user.is_active,
            "groups": _groups_of(user), "schemas": [f"{SCHEMA}ServicePrincipal"]}


def group_dict(group):
    members = sorted(group.user_set.all(), key=lambda u: u.id)
    return {"id": str(group.id), "displayName": group.name, "schemas": [f"{SCHEMA}Group"],
            "members": [{"value": str(u.id), "display": display_name(u),
                         "$ref": f"{'ServicePrincipals' if _is_sp(u) else 'Users'}/{u.id}"} for u in members]}


def display_name(user):
    if _is_sp(user):
        return user.first_name or str(user.service_principal.application_id)
    return f"{user.first_name} {user.last_name}".strip() or user.username


def _is_sp(user):
    return hasattr(user, "service_principal")


def _groups_of(user):
    return [{"value": str(g.id), "display": g.name, "type": "direct", "$ref": f"Groups/{g.id}"}
            for g in user.groups.order_by("id")]


# --- filters and pages -------------------------------------------------------------------------

_TERM = re.compile(r'^\s*(\w+(?:\.\w+)?)\s+(eq|ne|co|sw)\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_LOOKUPS = {"eq": "iexact", "co": "icontains", "sw": "istartswith"}


def scim_filter(text, fields):
    """A Q for a SCIM filter over `fields` ({SCIM attribute: model field}); 400 for anything else."""
    if not text:
        return Q()
    disjuncts = []
    for part in re.split(r"\s+or\s+", text, flags=re.IGNORECASE):
        terms = []
        for term in re.split(r"\s+and\s+", part, flags=re.IGNORECASE):
            match = _TERM.match(term)
            if match is None:
                raise invalid(f"filter {term.strip()!r} is not supported: use attribute eq|ne|co|sw \"value\", "
                              "joined by and / or")
            attribute, op, value = match.group(1), match.group(2).lower(), match.group(3).replace('\\"', '"')
            field = {k.lower(): v for k, v in fields.items()}.get(attribute.lower())
            if field is None:
                raise invalid(f"filter attribute {attribute!r} is not supported; supported: {', '.join(fields)}")
            q = Q(**{f"{field}__iexact" if op == "ne" else f"{field}__{_LOOKUPS[op]}": value})
            terms.append(~q if op == "ne" else q)
        disjuncts.append(reduce(lambda a, b: a & b, terms))
    return reduce(lambda a, b: a | b, disjuncts)


def list_page(data, queryset, shape):
    start = int_param(data, "startIndex", default=1, low=1)
    count = int_param(data, "count", default=MAX_COUNT, low=0, high=MAX_COUNT)
    total = queryset.count()
    rows = list(queryset.order_by("id")[start - 1:start - 1 + count])
    return {"Resources": [shape(row) for row in rows], "itemsPerPage": len(rows), "startIndex": start,
            "totalResults": total, "schemas": [LIST_SCHEMA]}


# --- who may write -----------------------------------------------------------------------------


def admin_only(request):
    require_admin(request, "create, change or delete users, groups and service principals")


def _one(queryset, identifier, kind):
    found = queryset.filter(id=int(identifier)).first() if str(identifier).isdigit() else None
    if found is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"{kind} {identifier} does not exist")
    return found


def _users():
    return User.objects.filter(service_principal__isnull=True).prefetch_related("groups")


def _service_principals():
    return User.objects.filter(service_principal__isnull=False).select_related("service_principal") \
        .prefetch_related("groups")


# --- Me and Users ------------------------------------------------------------------------------


@api_view("GET")
def me(request, data):
    user = request.user
    if _is_sp(user):  # w.current_user.me() reads a User: a service principal's userName is its application id
        return {**service_principal_dict(user), "userName": str(user.service_principal.application_id)}
    return user_dict(user)


USER_FIELDS = {"userName": "username", "id": "id", "active": "is_active", "emails.value": "email",
               "displayName": "first_name", "name.givenName": "first_name", "name.familyName": "last_name"}


@api_view("GET")
def list_users(request, data):
    return list_page(data, _users().filter(scim_filter(str_param(data, "filter"), USER_FIELDS)), user_dict)


@api_view("GET")
def get_user(request, data, user_id):
    return user_dict(_one(_users(), user_id, "User"))


@api_view("POST")
def create_user(request, data):
    admin_only(request)
    user_name = _required_text(data, "userName")
    with transaction.atomic():
        user = User(username=user_name)
        user.set_unusable_password()  # they sign in once an admin sets a password, or use tokens
        _apply_user(user, data)
        _save(user, f"A user named {user_name} already exists")
        _set_groups(user, data.get("groups"))
    return user_dict(user)


@api_view("PUT")
def replace_user(request, data, user_id):
    admin_only(request)
    user = _one(_users(), user_id, "User")
    with transaction.atomic():
        user.username = _required_text(data, "userName")
        user.first_name = user.last_name = user.email = ""
        _apply_user(user, data)
        _save(user, f"A user named {user.username} already exists")
        _set_groups(user, data.get("groups") or [])
    return user_dict(user)


@api_view("PATCH")
def patch_user(request, data, user_id):
    admin_only(request)
    user = _one(_users(), user_id, "User")
    with transaction.atomic():
        for op, path, value in _operations(data):
            if path in ("active", "displayName", "name.givenName", "name.familyName", "userName", "emails"):
                if op == "remove":
                    raise invalid(f"Operations: {path} cannot be removed")
                _apply_user(user, _nested(path, value))
            elif path == "groups":
                _change_groups(user, op, value)
            elif path.startswith("groups[") and op == "remove":
                user.groups.remove(*_groups_in_path(path))
            elif path in ("entitlements", "roles"):
                continue  # workspace entitlements are not ours: accepted and ignored, as for SCIM PUT
            else:
                raise invalid(f"Operations: path {path!r} is not supported for users")
        _save(user, f"A user named {user.username} already exists")
    return {}


@api_view("DELETE")
def delete_user(request, data, user_id):
    admin_only(request)
    _one(_users(), user_id, "User").delete()  # its tokens go with it: they stop working at once
    return {}


def _apply_user(user, data):
    if "userName" in data:
        user.username = _required_text(data, "userName")
    if "active" in data:
        user.is_active = _boolean("active", data["active"])
    name = data.get("name") or {}
    if not isinstance(name, dict):
        raise invalid("name must be an object")
    given, family = name.get("givenName"), name.get("familyName")
    if isinstance(data.get("displayName"), str) and given is None and family is None:
        given, _, family = data["displayName"].strip().partition(" ")
    if given is not None:
        user.first_name = str(given)[:150]
    if family is not None:
        user.last_name = str(family)[:150]
    emails = data.get("emails")
    if isinstance(emails, list):
        primary = [e for e in emails if isinstance(e, dict) and e.get("primary")] or \
                  [e for e in emails if isinstance(e, dict)]
        user.email = str(primary[0].get("value", ""))[:254] if primary else ""
    elif not user.email and "@" in user.username:
        user.email = user.username[:254]


# --- Service principals ------------------------------------------------------------------------

SP_FIELDS = {"applicationId": "service_principal__application_id", "displayName": "first_name", "id": "id",
             "active": "is_active"}


@api_view("GET")
def list_service_principals(request, data):
    queryset = _service_principals().filter(scim_filter(str_param(data, "filter"), SP_FIELDS))
    return list_page(data, queryset, service_principal_dict)


@api_view("GET")
def get_service_principal(request, data, user_id):
    return service_principal_dict(_one(_service_principals(), user_id, "Service principal"))


@api_view("POST")
def create_service_principal(request, data):
    admin_only(request)
    application_id = data.get("applicationId") or str(uuid.uuid4())
    try:
        application_id = uuid.UUID(str(application_id))
    except ValueError:
        raise invalid(f"applicationId {application_id!r} is not a UUID") from None
    with transaction.atomic():
        user = User(username=str(application_id), first_name=str(data.get("displayName") or "")[:150],
                    is_active=data.get("active", True) is not False)
        user.set_unusable_password()  # tokens only
        _save(user, f"A service principal with applicationId {application_id} already exists")
        ServicePrincipal.objects.create(user=user, application_id=application_id)
        _set_groups(user, data.get("groups"))
    return service_principal_dict(_service_principals().get(id=user.id))


@api_view("PATCH")
def patch_service_principal(request, data, user_id):
    admin_only(request)
    user = _one(_service_principals(), user_id, "Service principal")
    with transaction.atomic():
        for op, path, value in _operations(data):
            if path == "active" and op != "remove":
                user.is_active = _boolean("active", value)
            elif path == "displayName" and op != "remove":
                user.first_name = str(value)[:150]
            elif path == "groups":
                _change_groups(user, op, value)
            elif path in ("entitlements", "roles"):
                continue
            else:
                raise invalid(f"Operations: path {path!r} is not supported for service principals")
        user.save()
    return {}


@api_view("PUT")
def replace_service_principal(request, data, user_id):
    admin_only(request)
    user = _one(_service_principals(), user_id, "Service principal")
    with transaction.atomic():
        user.first_name = str(data.get("displayName") or "")[:150]
        user.is_active = data.get("active", True) is not False
        user.save()
        _set_groups(user, data.get("groups") or [])
    return service_principal_dict(user)


@api_view("DELETE")
def delete_service_principal(request, data, user_id):
    admin_only(request)
    _one(_service_principals(), user_id, "Service principal").delete()
    return {}


# --- Groups ------------------------------------------------------------------------------------

GROUP_FIELDS = {"displayName": "name", "id": "id"}


@api_view("GET")
def list_groups(request, data):
    queryset = Group.objects.prefetch_related("user_set__groups").filter(
        scim_filter(str_param(data, "filter"), GROUP_FIELDS))
    return list_page(data, queryset, group_dict)


@api_view("GET")
def get_group(request, data, group_id):
    return group_dict(_one(Group.objects.all(), group_id, "Group"))


@api_view("POST")
def create_group(request, data):
    admin_only(request)
    return _store_group(Group(), data)


@api_view("PUT")
def replace_group(request, data, group_id):
    admin_only(request)
    return _store_group(_one(Group.objects.all(), group_id, "Group"), data)


@transaction.atomic
def _store_group(group, data):
    """Create or replace a group: its name and its whole member list."""
    group.name = _required_text(data, "displayName")[:150]
    _save(group, f"A group named {group.name} already exists")
    group.user_set.set(_members(data.get("members") or []))
    return group_dict(group)


@api_view("PATCH")
def patch_group(request, data, group_id):
    admin_only(request)
    group = _one(Group.objects.all(), group_id, "Group")
    with transaction.atomic():
        for op, path, value in _operations(data):
            if path == "members":
                members = _members(value if isinstance(value, list) else [value])
                (group.user_set.remove if op == "remove" else group.user_set.add)(*members)
            elif path.startswith("members[") and op == "remove":
                group.user_set.remove(*_members([{"value": v} for v in _values_in_path(path)]))
            elif path == "displayName" and op != "remove":
                group.name = str(value)[:150]
                _save(group, f"A group named {group.name} already exists")
            else:
                raise invalid(f"Operations: path {path!r} is not supported for groups")
    return {}


@api_view("DELETE")
def delete_group(request, data, group_id):
    admin_only(request)
    _one(Group.objects.all(), group_id, "Group").delete()
    return {}


# --- shared readers ----------------------------------------------------------------------------


def _required_text(data, name):
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} is required and must be a non-empty string")
    if len(value) > 150:
        raise invalid(f"{name} must be at most 150 characters")
    return value.strip()


def _boolean(name, value):
    """true / false, "true" / "false", or SCIM's [{"value": "false"}]."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0].get("value")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false (the SDK leaves a false Patch value out: send \"false\")")
    return value


def _operations(data):
    operations = data.get("Operations", data.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise invalid("Operations must be a non-empty array of {op, path, value}")
    found = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise invalid(f"Operations[{index}] must be an object")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "remove", "replace"):
            raise invalid(f"Operations[{index}].op must be add, remove or replace")
        path = operation.get("path")
        if path is None and op != "remove" and isinstance(operation.get("value"), dict):
            found += [(op, key, value) for key, value in operation["value"].items()]
            continue
        if not isinstance(path, str) or not path:
            raise invalid(f"Operations[{index}].path is required")
        found.append((op, path, operation.get("value")))
    return found


def _nested(path, value):
    head, _, tail = path.partition(".")
    return {head: {tail: value}} if tail else {head: value}


def _values_in_path(path):
    """The ids in `members[value eq "1"]` or `groups[value eq "2"]`."""
    values = re.findall(r'value\s+eq\s+"?(\d+)"?', path)
    if not values:
        raise invalid(f"Operations: path {path!r} must name members as [value eq \"<id>\"]")
    return values


def _ids(items, what):
    ids = []
    for item in items:
        value = item.get("value") if isinstance(item, dict) else item
        if not str(value).isdigit():
            raise invalid(f"{what} must be [{{\"value\": \"<id>\"}}], not {item!r}")
        ids.append(int(value))
    return ids


def _members(items):
    return _existing(User.objects.all(), _ids(items, "members"), "members: no user or service principal has id")


def _groups(items):
    return _existing(Group.objects.all(), _ids(items, "groups"), "groups: no group has id")


def _existing(queryset, ids, missing_says):
    """The rows with these ids; a 400 naming the ids that do not exist."""
    found = list(queryset.filter(id__in=ids))
    missing = sorted(set(ids) - {row.id for row in found})
    if missing:
        raise invalid(f"{missing_says} {', '.join(map(str, missing))}")
    return found


def _groups_in_path(path):
    return _groups([{"value": v} for v in _values_in_path(path)])


def _set_groups(user, items):
    if items is not None:
        user.groups.set(_groups(items if isinstance(items, list) else [items]))


def _change_groups(user, op, value):
    groups = _groups(value if isinstance(value, list) else [value])
    (user.groups.remove if op == "remove" else user.groups.add)(*groups)


def _save(row, conflict):
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise ApiError(409, "RESOURCE_ALREADY_EXISTS", conflict) from None
