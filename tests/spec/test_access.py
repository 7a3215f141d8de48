"""The one rule of who may do what with a job, without Django."""

import pytest

from jobs.spec.access import (
    AclInvalid,
    Action,
    Caller,
    Grant,
    OwnerChangeDenied,
    level_of,
    levels_for,
    may,
    new_grants,
    refusal,
)

OWNER = Grant("user", 1, "IS_OWNER")
ALICE, BOB, TEAM = Caller(1), Caller(2, frozenset({10})), 10
ADMIN = Caller(99, is_admin=True)


@pytest.mark.parametrize("grants, caller, expected", [
    ([OWNER], ALICE, "IS_OWNER"),
    ([OWNER], BOB, None),
    ([OWNER, Grant("group", TEAM, "CAN_VIEW")], BOB, "CAN_VIEW"),
    ([OWNER, Grant("group", TEAM, "CAN_VIEW"), Grant("user", 2, "CAN_MANAGE_RUN")], BOB, "CAN_MANAGE_RUN"),
    ([OWNER, Grant("group", TEAM, "CAN_MANAGE"), Grant("user", 2, "CAN_VIEW")], BOB, "CAN_MANAGE"),
    ([OWNER], ADMIN, "CAN_MANAGE"),
    ([], ADMIN, "CAN_MANAGE"),
])
def test_the_highest_level_from_any_grant_counts(grants, caller, expected):
    assert level_of(caller, grants) == expected


@pytest.mark.parametrize("level, allowed", [
    (None, set()),
    ("CAN_VIEW", {Action.VIEW}),
    ("CAN_MANAGE_RUN", {Action.VIEW, Action.VIEW_LOGS, Action.RUN}),
    ("CAN_MANAGE", set(Action)),
    ("IS_OWNER", set(Action)),
])
def test_each_level_allows_the_actions_of_the_databricks_table(level, allowed):
    grants = [Grant("user", 2, level)] if level else []
    assert {action for action in Action if may(BOB, grants, action)} == allowed
    assert all(level in levels_for(action) for action in allowed)


def test_a_refusal_names_user_job_and_what_was_missing():
    assert refusal("bob", 7, Action.RUN) == "User bob does not have Manage Run or Owner or Admin permissions on job 7."
    assert refusal("bob", 7, Action.VIEW) == "User bob does not have View permissions on job 7."


def test_patch_merges_and_put_replaces_but_the_owner_stays():
    current = [OWNER, Grant("user", 2, "CAN_VIEW"), Grant("group", TEAM, "CAN_VIEW")]
    patched = new_grants(current, [Grant("user", 2, "CAN_MANAGE_RUN")], replace=False, caller=ALICE)
    assert patched == [OWNER, Grant("group", TEAM, "CAN_VIEW"), Grant("user", 2, "CAN_MANAGE_RUN")]
    put = new_grants(current, [Grant("user", 3, "CAN_VIEW")], replace=True, caller=ALICE)
    assert put == [OWNER, Grant("user", 3, "CAN_VIEW")]
    assert new_grants(current, [], replace=True, caller=ALICE) == [OWNER]


def test_an_admin_hands_ownership_over_and_the_old_owner_keeps_can_manage():
    new = new_grants([OWNER], [Grant("user", 5, "IS_OWNER")], replace=False, caller=ADMIN)
    assert new == [Grant("user", 5, "IS_OWNER"), Grant("user", 1, "CAN_MANAGE")]


@pytest.mark.parametrize("requested, replace, words", [
    ([Grant("user", 2, "CAN_READ")], False, "'CAN_READ' is not a permission level"),
    ([Grant("group", TEAM, "IS_OWNER")], False, "A group cannot own a job"),
    ([Grant("user", 2, "IS_OWNER"), Grant("user", 3, "IS_OWNER")], False, "exactly one owner"),
    ([Grant("user", 1, "CAN_MANAGE")], False, "without an owner"),
    ([Grant("user", 1, "CAN_VIEW")], True, "without an owner"),
    ([Grant("user", 2, "CAN_VIEW"), Grant("user", 2, "CAN_MANAGE")], False, "one principal twice"),
])
def test_bad_lists_are_refused_whole(requested, replace, words):
    with pytest.raises(AclInvalid, match=words):
        new_grants([OWNER], requested, replace=replace, caller=ADMIN)


def test_only_admins_make_someone_else_owner():
    with pytest.raises(OwnerChangeDenied):
        new_grants([OWNER], [Grant("user", 2, "IS_OWNER")], replace=False, caller=ALICE)
    with pytest.raises(OwnerChangeDenied):  # nor on a job that lost its owner
        new_grants([], [Grant("user", 2, "IS_OWNER")], replace=False, caller=ALICE)
    assert new_grants([], [Grant("user", 1, "IS_OWNER")], replace=False, caller=ALICE) == [OWNER]
