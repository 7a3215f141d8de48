"""The Secrets API's rules, as Databricks states them. Pure: no Django.

- scope and key names: alphanumeric characters, dashes, underscores and periods, at most 128;
- a value: at most 128 KB; a scope: at most 1000 secrets;
- ACLs: READ < WRITE < MANAGE, on a whole scope. READ lists keys and reads values, WRITE also
  puts and deletes secrets, MANAGE also changes ACLs and deletes the scope. A caller holds the
  strongest level granted to their user name, to one of their groups, or to the group `users`
  (everyone); admins hold MANAGE everywhere.
"""

import re
from enum import StrEnum

NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
MAX_VALUE_BYTES = 128 * 1024
MAX_SECRETS_PER_SCOPE = 1000
MAX_SCOPES = 1000
EVERYONE = "users"
"""The principal every user belongs to, as in a Databricks workspace."""


class Permission(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    MANAGE = "MANAGE"


RANK = {Permission.READ: 1, Permission.WRITE: 2, Permission.MANAGE: 3}


class SecretRefused(Exception):
    """A request the rules refuse; `error_code` is the Databricks code, `http_status` its status."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class NotFound(SecretRefused):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExists(SecretRefused):
    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class LimitExceeded(SecretRefused):
    error_code = "RESOURCE_LIMIT_EXCEEDED"
    http_status = 400


class Denied(SecretRefused):
    error_code = "PERMISSION_DENIED"
    http_status = 403


def name_problem(kind, name):
    """Why `name` cannot name a scope or key ("scope", "key"), or None."""
    if not isinstance(name, str) or not name:
        return f"{kind} is required"
    if not NAME.fullmatch(name):
        shown = name if len(name) <= 140 else name[:128] + "..."
        return (f"Invalid {kind} name {shown!r}: it must consist of alphanumeric characters, dashes, "
                f"underscores and periods, and may not exceed 128 characters")
    return None


def checked_name(kind, name):
    problem = name_problem(kind, name)
    if problem:
        raise SecretRefused(problem)
    return name


def checked_value(value):
    """The value's bytes, if within the limit. The message never holds the value."""
    if len(value) > MAX_VALUE_BYTES:
        raise SecretRefused(f"The secret value is {len(value):,} bytes; the limit is {MAX_VALUE_BYTES:,} bytes (128 KB)")
    return value


def permission_of(text):
    try:
        return Permission(text)
    except ValueError:
        raise SecretRefused(f"permission must be one of READ, WRITE, MANAGE, not {text!r}") from None


def held_permission(acls, principals, is_admin):
    """The strongest permission in `acls` ({principal: Permission}) held by a caller known by
    `principals` (their user name, group names...; EVERYONE is added), or None."""
    if is_admin:
        return Permission.MANAGE
    names = set(principals) | {EVERYONE}
    held = [Permission(level) for principal, level in acls.items() if principal in names]
    return max(held, key=RANK.__getitem__, default=None)


def allows(held, needed):
    return held is not None and RANK[Permission(held)] >= RANK[needed]


def refusal(user_name, scope, needed):
    return f"User {user_name} does not have {needed} permission on scope {scope}"
