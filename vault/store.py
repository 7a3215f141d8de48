"""The secret store's operations, for the Secrets API, the `secrets` management command and task
attempts: load rows, ask vault/rules.py, write in one transaction. Values go in and out as bytes;
only vault/crypto.py sees them in the clear on the way to the database."""

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction

from jobs.permissions import caller_of
from vault import crypto
from vault.models import Secret, SecretAcl, SecretFetch, SecretScope
from vault.rules import (
    EVERYONE,
    MAX_SCOPES,
    MAX_SECRETS_PER_SCOPE,
    AlreadyExists,
    Denied,
    LimitExceeded,
    NotFound,
    Permission,
    SecretRefused,
    allows,
    checked_name,
    checked_value,
    held_permission,
    refusal,
)


def now_ms():
    return int(time.time() * 1000)


def scope_named(name):
    scope = SecretScope.objects.filter(name=name).first() if isinstance(name, str) else None
    if scope is None:
        raise NotFound(f"Scope {name} does not exist!")
    return scope


# --- who may do what --------------------------------------------------------------------------


def principals_of(user):
    """The names an ACL may grant this user by: their user name (a service principal's is its
    application id) and their groups' names."""
    return {user.get_username(), *user.groups.values_list("name", flat=True)}


def permission_on(user, scope):
    """The strongest permission `user` holds on `scope` (None: none); `user` None is the server's
    operator (the management command), who holds MANAGE."""
    if user is None:
        return Permission.MANAGE
    acls = dict(scope.acls.values_list("principal", "permission"))
    return held_permission(acls, principals_of(user), caller_of(user).is_admin)


def require(user, scope, needed):
    """Raise Denied unless `user` holds `needed` on `scope` (the operator, None, always does)."""
    if user is not None and not allows(permission_on(user, scope), needed):
        raise Denied(refusal(user.get_username(), scope.name, needed))


def principal_exists(principal):
    return (principal == EVERYONE or get_user_model().objects.filter(username=principal, is_active=True).exists()
            or Group.objects.filter(name=principal).exists())


# --- scopes -----------------------------------------------------------------------------------


def _lock_scope_table():
    """Until the transaction ends, make other scope creations wait, so that counting scopes and
    adding one are one step. SQLite's write transactions (BEGIN IMMEDIATE) take turns already;
    on Postgres the table lock's mode conflicts with itself and with writes, never with reads."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(SecretScope._meta.db_table)} "
                           f"IN SHARE ROW EXCLUSIVE MODE")


def create_scope(name, user, initial_manage_principal=None):
    """A new scope; MANAGE goes to its creator, or to `users` if asked (Databricks allows only that)."""
    checked_name("scope", name)
    if initial_manage_principal not in (None, "", EVERYONE):
        raise SecretRefused(f"initial_manage_principal may only be {EVERYONE!r} (all users), "
                            f"not {initial_manage_principal!r}")
    manager = EVERYONE if initial_manage_principal else (user.get_username() if user is not None else None)
    try:
        with transaction.atomic():
            _lock_scope_table()
            if SecretScope.objects.count() >= MAX_SCOPES:
                raise LimitExceeded(f"This workspace already has {MAX_SCOPES} secret scopes, the limit")
            scope = SecretScope.objects.create(name=name, created_by=user)
            if manager is not None:
                SecretAcl.objects.create(scope=scope, principal=manager, permission=Permission.MANAGE)
    except IntegrityError:
        raise AlreadyExists(f"Scope {name} already exists!") from None
    return scope


def delete_scope(name, user):
    scope = scope_named(name)
    require(user, scope, Permission.MANAGE)
    scope.delete()  # its secrets and ACLs with it; attempts' fetches stay, for redaction


def list_scopes():
    return list(SecretScope.objects.order_by("name"))


# --- secrets ----------------------------------------------------------------------------------


def put_secret(scope_name, key, value, user):
    scope = scope_named(scope_name)
    require(user, scope, Permission.WRITE)
    checked_name("key", key)
    encrypted = crypto.encrypt(checked_value(value))
    with transaction.atomic():
        # The scope's row, locked until commit: puts of new keys into one scope take turns, so the
        # count below sees every secret the others added (SQLite's transactions take turns anyway).
        if SecretScope.objects.select_for_update().filter(id=scope.id).first() is None:
            raise NotFound(f"Scope {scope.name} does not exist!")  # deleted meanwhile
        updated = Secret.objects.filter(scope=scope, key=key).update(
            encrypted_value=encrypted, last_updated_timestamp=now_ms())
        if not updated:
            if Secret.objects.filter(scope=scope).count() >= MAX_SECRETS_PER_SCOPE:
                raise LimitExceeded(f"Scope {scope.name} already holds {MAX_SECRETS_PER_SCOPE} secrets, the limit")
            Secret.objects.create(scope=scope, key=key, encrypted_value=encrypted, last_updated_timestamp=now_ms())


def delete_secret(scope_name, key, user):
    scope = scope_named(scope_name)
    require(user, scope, Permission.WRITE)
    if not Secret.objects.filter(scope=scope, key=key).delete()[0]:
        raise NotFound(f"Secret {key} does not exist in scope {scope.name}!")


def list_secrets(scope_name, user):
    """[(key, last_updated_timestamp)]: never a value."""
    scope = scope_named(scope_name)
    require(user, scope, Permission.READ)
    return list(Secret.objects.filter(scope=scope).order_by("key").values_list("key", "last_updated_timestamp"))


def read_secret(scope_name, key, user, attempt_id=None):
    """The value's bytes. Read for a task attempt, the value is first recorded as the attempt's,
    so whatever the task prints of it is redacted from the first byte on."""
    scope = scope_named(scope_name)
    require(user, scope, Permission.READ)
    secret = Secret.objects.filter(scope=scope, key=key).first() if isinstance(key, str) else None
    if secret is None:
        raise NotFound(f"Secret does not exist with scope: {scope.name} and key: {key}")
    value = crypto.decrypt(secret.encrypted_value)
    if attempt_id is not None:
        SecretFetch.objects.bulk_create(
            [SecretFetch(attempt_id=attempt_id, scope_name=scope.name, key=secret.key,
                         secret_updated=secret.last_updated_timestamp, encrypted_value=secret.encrypted_value)],
            ignore_conflicts=True)
    return value


def values_fetched_by(attempt_id):
    """The values (bytes) this attempt read, for redacting its output. Raises crypto.Unreadable if
    one of them cannot be decrypted (LAKEFLOW_SECRETS_KEY is not the key that stored it): the
    attempt's output may hold that value, and the caller must then show none of it."""
    tokens = SecretFetch.objects.filter(attempt_id=attempt_id).values_list("encrypted_value", flat=True)
    return [crypto.decrypt(token) for token in tokens]


# --- ACLs -------------------------------------------------------------------------------------


def put_acl(scope_name, principal, permission, user):
    scope = scope_named(scope_name)
    require(user, scope, Permission.MANAGE)
    if not isinstance(principal, str) or not principal_exists(principal):
        raise SecretRefused(f"Principal {principal} does not exist: name a user, a group, a service "
                            f"principal's application id, or {EVERYONE!r}")
    SecretAcl.objects.update_or_create(scope=scope, principal=principal, defaults={"permission": permission})


def delete_acl(scope_name, principal, user):
    scope = scope_named(scope_name)
    require(user, scope, Permission.MANAGE)
    if not SecretAcl.objects.filter(scope=scope, principal=principal).delete()[0]:
        raise NotFound(f"No ACL for principal {principal} on scope {scope.name}")


def get_acl(scope_name, principal, user):
    scope = scope_named(scope_name)
    require(user, scope, Permission.MANAGE)
    acl = SecretAcl.objects.filter(scope=scope, principal=principal).first()
    if acl is None:
        raise NotFound(f"No ACL for principal {principal} on scope {scope.name}")
    return acl


def list_acls(scope_name, user):
    scope = scope_named(scope_name)
    require(user, scope, Permission.MANAGE)
    return list(scope.acls.order_by("principal"))


def rotate_key():
    """Re-encrypt every stored value with the first key of LAKEFLOW_SECRETS_KEY; returns how many."""
    count = 0
    with transaction.atomic():
        for model in (Secret, SecretFetch):
            for row_id, token in model.objects.values_list("id", "encrypted_value"):
                model.objects.filter(id=row_id).update(encrypted_value=crypto.rotated(token))
                count += 1
    return count
