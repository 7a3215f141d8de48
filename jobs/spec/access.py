"""Who may do what with a job: the one rule, as Databricks has it, with no Django in it.

Levels: CAN_VIEW < CAN_MANAGE_RUN < CAN_MANAGE, and IS_OWNER, which may do all that CAN_MANAGE
may. Workspace admins inherit CAN_MANAGE on every job. A job has exactly one owner, a user or a
service principal (never a group). Only admins hand ownership to someone else; the previous
owner keeps CAN_MANAGE. Every entry point (API, pages, POSTs, the websocket) asks `may`; the
shell (jobs/permissions.py) only gathers the grants and the caller's groups.
"""

from dataclasses import dataclass, field
from enum import Enum

CAN_VIEW, CAN_MANAGE_RUN, CAN_MANAGE, IS_OWNER = "CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"
LEVELS = (CAN_VIEW, CAN_MANAGE_RUN, CAN_MANAGE, IS_OWNER)
RANK = {CAN_VIEW: 1, CAN_MANAGE_RUN: 2, CAN_MANAGE: 3, IS_OWNER: 3}
DESCRIPTIONS = {
    CAN_VIEW: "Can view the job, its settings and its runs' results",
    CAN_MANAGE_RUN: "Can view, and run, cancel and repair the job's runs, and read their logs",
    IS_OWNER: "Owns the job: can do everything CAN_MANAGE can; the job's runs run as its owner by default",
    CAN_MANAGE: "Can view, run, edit and delete the job and change its permissions",
}

USER, GROUP, SERVICE_PRINCIPAL = "user_name", "group_name", "service_principal_name"
PRINCIPAL_KINDS = (USER, GROUP, SERVICE_PRINCIPAL)
ADMINS_OBJECT = "/jobs/"  # where admins' CAN_MANAGE is inherited from, as Databricks names it


class Action(Enum):
    VIEW = CAN_VIEW  # settings, runs, results, outputs, exports, lineage
    VIEW_LOGS = CAN_MANAGE_RUN  # a task's log
    RUN = CAN_MANAGE_RUN  # run now, cancel, repair
    MANAGE = CAN_MANAGE  # edit, delete the job or its runs, change its permissions


# How a refusal names what was missing, in Databricks' words.
NEEDED_WORDS = {CAN_VIEW: "View", CAN_MANAGE_RUN: "Manage Run or Owner or Admin", CAN_MANAGE: "Owner or Admin"}


@dataclass(frozen=True)
class Caller:
    """Who asks: a user (or service principal) id, the ids of the groups they are in, and
    whether they administer the workspace."""

    user_id: int
    group_ids: frozenset = field(default_factory=frozenset)
    is_admin: bool = False


@dataclass(frozen=True)
class Grant:
    """A direct grant: kind is "user" (users and service principals) or "group"."""

    kind: str
    principal_id: int
    level: str


def level_of(caller, grants):
    """The highest level `caller` holds through `grants` (or as an admin), or None."""
    best = CAN_MANAGE if caller.is_admin else None
    for grant in grants:
        mine = (grant.kind == "user" and grant.principal_id == caller.user_id) or (
            grant.kind == "group" and grant.principal_id in caller.group_ids)
        if mine and grant.level in RANK and (best is None or RANK[grant.level] > RANK[best]
                                             or grant.level == IS_OWNER):
            best = grant.level  # a level this rule does not know (a hand-edited row) grants nothing
    return best


def may(caller, grants, action):
    level = level_of(caller, grants)
    return level is not None and RANK[level] >= RANK[action.value]


def levels_for(action):
    """The levels that allow `action` (for a query that must say the rule in SQL)."""
    return [level for level in LEVELS if RANK[level] >= RANK[action.value]]


def run_as_refusal(caller, kind, target_user_id, caller_name, target_name):
    """Why `caller` may not make a job run as this identity, or None. Databricks' rule: an admin
    may name anyone; others only themselves. (Databricks also lets holders of a service
    principal's "user" role name it; this server has no such role, so that is for admins.)"""
    if caller.is_admin or target_user_id == caller.user_id:  # a service principal may name itself
        return None
    if kind == SERVICE_PRINCIPAL:
        return (f"{caller_name} may not run jobs as service principal {target_name}: only workspace admins "
                "may choose a service principal")
    return f"{caller_name} may not run jobs as {target_name}: only as themself (an admin may choose anyone)"


def refusal(user_name, job_id, action):
    return f"User {user_name} does not have {NEEDED_WORDS[action.value]} permissions on job {job_id}."


class AclInvalid(ValueError):
    """An access control list this server will not apply; the message names the entry."""


class OwnerChangeDenied(PermissionError):
    """A non-admin tried to hand a job to someone else."""


def new_grants(current, requested, *, replace, caller):
    """The grants after a PUT (`replace`) or PATCH of `requested` (Grants with principals already
    resolved) on a job that has `current`, or AclInvalid. Nothing changes unless all is valid.

    A PUT replaces the direct grants; one that names no owner keeps the current one. A new owner
    is for admins to name (or the caller naming themselves on a job without an owner); the owner
    it replaces keeps CAN_MANAGE."""
    for grant in requested:
        if grant.level not in LEVELS:
            raise AclInvalid(f"{grant.level!r} is not a permission level of jobs; use one of {', '.join(LEVELS)}")
        if grant.level == IS_OWNER and grant.kind == "group":
            raise AclInvalid("A group cannot own a job: IS_OWNER must be a user or a service principal")
    owners = [g for g in requested if g.level == IS_OWNER]
    if len(owners) > 1:
        raise AclInvalid("A job has exactly one owner: the list names "
                         f"{len(owners)} principals with IS_OWNER")
    seen = set()
    for grant in requested:
        if (grant.kind, grant.principal_id) in seen:
            raise AclInvalid("The list names one principal twice; give each one level")
        seen.add((grant.kind, grant.principal_id))
    old_owner = next((g for g in current if g.level == IS_OWNER), None)
    new_owner = owners[0] if owners else None
    if new_owner and old_owner and new_owner.principal_id != old_owner.principal_id and not caller.is_admin:
        raise OwnerChangeDenied("Only workspace admins can change the owner of a job")
    if new_owner and old_owner is None and not caller.is_admin and new_owner.principal_id != caller.user_id:
        raise OwnerChangeDenied("Only workspace admins can make someone else the owner of a job")
    keeps_owner = old_owner if new_owner is None else new_owner
    if keeps_owner is old_owner and old_owner is not None and (old_owner.kind, old_owner.principal_id) in seen:
        raise AclInvalid("The list would leave the job without an owner: name a new IS_OWNER "
                         "before giving its owner another level")
    if replace:
        base = {}
    else:
        base = {(g.kind, g.principal_id): g for g in current if g.level != IS_OWNER}
    for grant in requested:
        if grant.level != IS_OWNER:
            base[(grant.kind, grant.principal_id)] = grant
    if new_owner and old_owner and new_owner.principal_id != old_owner.principal_id:
        key = ("user", old_owner.principal_id)
        if key not in base:
            base[key] = Grant("user", old_owner.principal_id, CAN_MANAGE)
    if keeps_owner is None:
        return sorted(base.values(), key=lambda g: (g.kind, g.principal_id))
    base.pop(("user", keeps_owner.principal_id), None)  # the owner holds one level: IS_OWNER
    return [keeps_owner, *sorted(base.values(), key=lambda g: (g.kind, g.principal_id))]
