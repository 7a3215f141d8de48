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


def test_tokens_through_the_sdk_and_a_service_principal_acting_with_its_own(server):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import PermissionDenied, Unauthenticated

    w = server.client()
    made = w.tokens.create(comment="e2e", lifetime_seconds=3600)
    assert made.token_value and made.token_info.comment == "e2e"
    assert made.token_info.token_id in {t.token_id for t in w.tokens.list()}
    mine = WorkspaceClient(host=server.url, token=made.token_value)
    assert mine.current_user.me().user_name == w.current_user.me().user_name
    w.tokens.delete(made.token_info.token_id)
    with pytest.raises(Unauthenticated, match="Invalid access token"):
        mine.current_user.me()

    robot = w.service_principals.create(display_name=f"robot {secrets.token_hex(3)}")
    obo = w.token_management.create_obo_token(application_id=robot.application_id, comment="nightly")
    as_robot = WorkspaceClient(host=server.url, token=obo.token_value)
    assert as_robot.current_user.me().display_name == robot.display_name
    assert list(as_robot.jobs.list(limit=1)) is not None  # it may read the API
    with pytest.raises(PermissionDenied):  # but it is no admin
        as_robot.token_management.list()
    assert obo.token_info.token_id in {t.token_id for t in w.token_management.list(created_by_id=int(robot.id))}
    w.service_principals.delete(robot.id)
    with pytest.raises(Unauthenticated):
        as_robot.current_user.me()  # its token went with it
