"""Who may do what with a job: the shell around the one rule in jobs/spec/access.py.

Every entry point (the Jobs and Permissions APIs, each page and POST of the dashboard, the run
page's websocket, lineage) asks `check` or `may` for one job, or narrows a list with
`jobs_where` / `viewable_jobs`, the same rule as one SQL EXISTS over the grants (the levels that
allow the action, held by the caller or one of their groups; admins see all): lists cost no
query per row.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from jobs.models import ADMINS_GROUP, Job, JobPermission, acts_for_a_task
from jobs.spec.access import (
    ADMINS_OBJECT,
    CAN_MANAGE,
    GROUP,
    IS_OWNER,
    LEVELS,
    SERVICE_PRINCIPAL,
    USER,
    AclInvalid,
    Action,
    Caller,
    Grant,
    levels_for,
    new_grants,
    refusal,
)
from jobs.spec.access import may as rule_may


class AccessDenied(PermissionDenied):
    """403 on a page (Django's PermissionDenied) and PERMISSION_DENIED in the API."""


def caller_of(user):
    """The rule's view of a user: id, group ids, admin. Read once per request (kept on the user)."""
    cached = getattr(user, "_lakeflow_caller", None)
    if cached is None:
        groups = list(user.groups.values_list("id", "name")) if user.is_authenticated else []
        admin = bool(user.is_superuser or any(name == ADMINS_GROUP for _, name in groups))
        cached = Caller(user_id=user.id, group_ids=frozenset(gid for gid, _ in groups),
                        is_admin=admin and not acts_for_a_task(user))
        user._lakeflow_caller = cached
    return cached


def forget_caller(user):
    """Drop what caller_of kept on a long-lived user object (a websocket's)."""
    user.__dict__.pop("_lakeflow_caller", None)
    wrapped = getattr(user, "_wrapped", None)  # a lazy user: the attribute sits on the real one
    if wrapped is not None and hasattr(wrapped, "__dict__"):
        wrapped.__dict__.pop("_lakeflow_caller", None)


def grant_of(row):
    if row.user_id is not None:
        return Grant("user", row.user_id, row.level)
    return Grant("group", row.group_id, row.level)


def grants_by_job(job_ids):
    """{job id: [Grant]} for these jobs, in one query."""
    grants = {job_id: [] for job_id in job_ids}
    for row in JobPermission.objects.filter(job_id__in=list(grants)).only("job_id", "user_id", "group_id", "level"):
        grants[row.job_id].append(grant_of(row))
    return grants


def may(user, job_id, action):
    caller = caller_of(user)
    if caller.is_admin:  # admins may everything: no grant to read
        return True
    return rule_may(caller, grants_by_job([job_id])[job_id], action)


def check(user, job_id, action):
    """Raise AccessDenied unless `user` may do `action` on the job; return all its abilities
    there (for the page's buttons), from the one read of its grants."""
    can = abilities(user, [job_id])[job_id]
    if not can[next(name for name, kind in ABILITIES if kind == action)]:
        raise AccessDenied(refusal(user.get_username(), job_id, action))
    return can


ABILITIES = (("view", Action.VIEW), ("logs", Action.VIEW_LOGS), ("run", Action.RUN), ("manage", Action.MANAGE))


def abilities(user, job_ids):
    """{job id: {"view", "run", "manage", "logs": bool}} for a list page's buttons, in one query."""
    caller = caller_of(user)
    grants = {} if caller.is_admin else grants_by_job(job_ids)
    return {job_id: {name: caller.is_admin or rule_may(caller, grants[job_id], action)
                     for name, action in ABILITIES}
            for job_id in job_ids}


def jobs_where(rows, user, action, job_field="pk", whole=False):
    """`rows` (any queryset whose `job_field` is a job id) narrowed to the jobs on which `user`
    may do `action`: the rule as a query, for lists. The same rule in two SQL shapes, by what the
    list does with the rows: `whole` (a page that counts or sorts all of them, like the jobs list
    by name) goes from the caller's grants to the jobs (two index searches); otherwise each row,
    walked in the list's own order, probes its job's grants, so a keyset page stops early."""
    caller = caller_of(user)
    if caller.is_admin:
        return rows
    grants = JobPermission.objects.all()
    if set(levels_for(action)) != set(LEVELS):  # every level may view: no level test for that
        grants = grants.filter(level__in=levels_for(action))
    if whole:
        held = Q(**{f"{job_field}__in": grants.filter(user_id=caller.user_id).values("job_id")})
        if caller.group_ids:
            held |= Q(**{f"{job_field}__in": grants.filter(group_id__in=caller.group_ids).values("job_id")})
        return rows.filter(held)
    grants = grants.filter(job_id=OuterRef(job_field)).filter(
        Q(user_id=caller.user_id) | Q(group_id__in=caller.group_ids))
    return rows.filter(Exists(grants))


def viewable_jobs(rows, user, job_field="pk", whole=False):
    return jobs_where(rows, user, Action.VIEW, job_field, whole)


# --- access control lists in the Permissions API's shapes --------------------------------------


def principal_key(entry):
    """(kind, name) of an access-control entry, or AclInvalid."""
    named = [(kind, entry.get(kind)) for kind in (USER, GROUP, SERVICE_PRINCIPAL) if entry.get(kind)]
    if len(named) != 1:
        raise AclInvalid(f"Each access control entry names exactly one of user_name, group_name or "
                         f"service_principal_name: {entry}")
    kind, name = named[0]
    if not isinstance(name, str):
        raise AclInvalid(f"{kind} must be a string: {entry}")
    return kind, name


def resolve(entries, include_inactive=False):
    """[Grant] for access-control entries, or AclInvalid naming the first unknown principal
    (deactivated ones count as unknown, except to take their grants away)."""
    users = get_user_model().objects if include_inactive else get_user_model().objects.filter(is_active=True)
    resolved = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise AclInvalid(f"Each access control entry is an object: {entry!r}")
        kind, name = principal_key(entry)
        level = entry.get("permission_level")
        if not isinstance(level, str):
            raise AclInvalid(f"permission_level is required for {kind} {name}")
        if kind == GROUP:
            group = Group.objects.filter(name=name).first()
            if group is None:
                raise AclInvalid(f"Group {name} does not exist")
            resolved.append(Grant("group", group.id, level))
        elif kind == USER:
            user = users.filter(username=name, service_principal__isnull=True).first()
            if user is None:
                raise AclInvalid(f"User {name} does not exist")
            resolved.append(Grant("user", user.id, level))
        else:
            # A service principal's user name is its application id (api/scim.py).
            sp = users.filter(username=name, service_principal__isnull=False).first()
            if sp is None:
                raise AclInvalid(f"Service principal {name} does not exist")
            resolved.append(Grant("user", sp.id, level))
    return resolved


def locked_grants(job):
    """The job's grants, read after locking the job's row until the transaction ends: two changes
    of one list take turns, and the second reads what the first wrote (locking the grant rows
    instead would let it read none, the first having replaced them)."""
    list(Job.objects.select_for_update().filter(id=job.id).values_list("id"))
    return [grant_of(row) for row in JobPermission.objects.filter(job=job).order_by("id")]


def store_grants(job, grants):
    JobPermission.objects.filter(job=job).delete()
    JobPermission.objects.bulk_create([
        JobPermission(job=job, level=g.level, **({"user_id": g.principal_id} if g.kind == "user"
                                                  else {"group_id": g.principal_id})) for g in grants])


@transaction.atomic
def change_acl(job, entries, *, user, replace):
    """Apply a PUT (replace) or PATCH of access-control entries to `job`, all or nothing."""
    current = locked_grants(job)
    store_grants(job, new_grants(current, resolve(entries), replace=replace, caller=caller_of(user)))


@transaction.atomic
def revoke(job, kind, name, *, user):
    """Take a principal's direct grant away (the dashboard's Remove); the owner's stays."""
    target = resolve([{kind: name, "permission_level": CAN_MANAGE}], include_inactive=True)[0]
    current = locked_grants(job)
    same = [g for g in current if (g.kind, g.principal_id) == (target.kind, target.principal_id)]
    if any(g.level == IS_OWNER for g in same):
        raise AclInvalid(f"{name} owns job {job.id}: make someone else the owner before removing them")
    if not same:
        raise AclInvalid(f"{name} has no permission of its own on job {job.id} to remove")
    kept = [g for g in current if g.level != IS_OWNER and g not in same]
    store_grants(job, new_grants(current, kept, replace=True, caller=caller_of(user)))


def grant_on_create(job, creator, entries):
    """The access_control_list of jobs/create or runs/submit, on top of the creator's ownership
    (Job.save_version): merged, so the creator stays owner unless the list names another (which
    only admins may). An entry giving the creator a lower level (as infrastructure-as-code tools
    write them) is moot, not an error: the owner already may do all of it."""
    names_an_owner = any(isinstance(e, dict) and e.get("permission_level") == IS_OWNER for e in entries)
    if not names_an_owner:
        entries = [e for e in entries if not (isinstance(e, dict) and names_user(e, creator))]
    if entries:
        change_acl(job, entries, user=creator, replace=False)


def names_user(entry, user):
    return any(entry.get(kind) == user.get_username() for kind in (USER, SERVICE_PRINCIPAL))


def acl_body(job):
    """GET /api/2.0/permissions/jobs/<id>: direct grants, then admins' inherited CAN_MANAGE."""
    rows = JobPermission.objects.filter(job=job).select_related("user__service_principal", "group")
    listed = []
    for row in sorted(rows, key=lambda r: (r.level != IS_OWNER, r.group_id is not None, r.id)):
        entry = principal_entry(row.user, row.group)
        entry["all_permissions"] = [{"permission_level": row.level, "inherited": False}]
        listed.append(entry)
    listed.append({GROUP: ADMINS_GROUP, "all_permissions": [
        {"permission_level": CAN_MANAGE, "inherited": True, "inherited_from_object": [ADMINS_OBJECT]}]})
    return {"object_id": f"/jobs/{job.id}", "object_type": "job", "access_control_list": listed}


def principal_entry(user, group):
    if group is not None:
        return {GROUP: group.name, "display_name": group.name}
    sp = getattr(user, "service_principal", None)
    if sp is not None:
        return {SERVICE_PRINCIPAL: str(sp.application_id), "display_name": user.first_name or user.username}
    return {USER: user.username, "display_name": user.get_full_name() or user.username}


def run_as_user(kind, name):
    """The active user (user_name) or service principal (service_principal_name, its application
    id) a run_as names, or None."""
    users = get_user_model().objects.filter(username=name, is_active=True)
    return users.filter(service_principal__isnull=(kind != SERVICE_PRINCIPAL)).first()


def run_as_identity(job, settings, owners=None):
    """Who the job's runs execute as: its run_as, else its owner, else its creator (Databricks:
    the owner by default). None only for a job without any of them. ``owners``: owners_of() for
    many jobs at once, this one's among them."""
    run_as = settings.get("run_as") or {}
    for kind in (USER, SERVICE_PRINCIPAL):
        if run_as.get(kind):
            return run_as_user(kind, run_as[kind])
    return (owner_of(job.id) if owners is None else owners.get(job.id)) or job.creator


def owner_of(job_id):
    """The owner's user, or None (a job whose owner was removed)."""
    row = JobPermission.objects.filter(job_id=job_id, level=IS_OWNER).select_related("user").first()
    return row.user if row else None


def owners_of(job_ids):
    """{job id: its owner's user} for the jobs of ``job_ids`` that have one, in one query."""
    return {row.job_id: row.user for row in JobPermission.objects.filter(job_id__in=list(job_ids), level=IS_OWNER)
            .select_related("user")}
