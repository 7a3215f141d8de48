"""Issue 15, identities: the workspace's users, groups and service principals through the
official SDK's own services, on `serve` and on Postgres + Redis."""

import secrets

import pytest
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.service import iam

pytestmark = pytest.mark.e2e


def test_the_sdk_reads_me_and_manages_users_groups_and_service_principals(server):
    w = server.client()
    me = w.current_user.me()
    assert me.user_name and me.active is True

    suffix = secrets.token_hex(3)
    ada = w.users.create(user_name=f"ada-{suffix}@example.com", display_name="Ada Lovelace")
    assert [u.id for u in w.users.list(filter=f'userName eq "ada-{suffix}@example.com"')] == [ada.id]
    with pytest.raises(ResourceAlreadyExists):
        w.users.create(user_name=f"ada-{suffix}@example.com")

    robot = w.service_principals.create(display_name=f"etl {suffix}")
    assert robot.application_id and w.service_principals.get(robot.id).display_name == f"etl {suffix}"

    team = w.groups.create(display_name=f"analysts-{suffix}", members=[iam.ComplexValue(value=ada.id)])
    w.groups.patch(team.id, operations=[iam.Patch(op=iam.PatchOp.ADD, path="members",
                                                  value=[{"value": robot.id}])],
                   schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP])
    assert sorted(m.value for m in w.groups.get(team.id).members) == sorted([ada.id, robot.id])
    assert [g.display for g in w.users.get(ada.id).groups] == [f"analysts-{suffix}"]

    # The SDK leaves out a falsy Patch value: Databricks' own examples send the SCIM form.
    w.users.patch(ada.id, operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value=[{"value": "false"}])])
    assert w.users.get(ada.id).active is False

    w.groups.delete(team.id)
    w.service_principals.delete(robot.id)
    w.users.delete(ada.id)
    with pytest.raises(NotFound):
        w.users.get(ada.id)
