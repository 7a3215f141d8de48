"""The Jobs API, under /api/2.2/ and /api/2.1/ with the same views, its OpenAPI document, and
the discovery document the databricks-sdk reads first."""

from django.urls import path, re_path

from api import jobs as jobs_api
from api import jobs_2_0
from api.http import databricks_config, endpoint_not_found, methods, openapi
from api import lineage as lineage_api
from api import audit, permissions, scim
from api import tokens
from api import secrets as secrets_api
from api import git_credentials as git_credentials_api
from api import notification_destinations as destinations_api
from api import workspace as workspace_api
from api import warehouses as warehouses_api
from api import runs as runs_api
from api import backfills as backfills_api

app_name = "api"

API_VERSIONS = ("2.1", "2.2")
SCIM = "api/2.0/preview/scim/v2"
ENDPOINTS = [
    ("jobs/create", jobs_api.create_job),
    ("jobs/get", jobs_api.get_job),
    ("jobs/list", jobs_api.list_jobs),
    ("jobs/update", jobs_api.update_job),
    ("jobs/reset", jobs_api.reset_job),
    ("jobs/validate", jobs_api.validate_job),  # ours: what create/reset would refuse, nothing saved
    ("jobs/delete", runs_api.delete_job),
    ("jobs/run-now", runs_api.run_now),
    ("jobs/runs/submit", runs_api.submit),
    ("jobs/runs/get", runs_api.get_run),
    ("jobs/runs/list", runs_api.list_runs),
    ("jobs/runs/get-output", runs_api.get_run_output),
    ("jobs/runs/cancel", runs_api.cancel_run),
    ("jobs/runs/cancel-all", runs_api.cancel_all_runs),
    ("jobs/runs/repair", runs_api.repair_run),
    ("jobs/runs/delete", runs_api.delete_run),
    ("jobs/runs/export", runs_api.export_run),
    ("jobs/runs/events", runs_api.list_run_events),  # ours
    ("jobs/runs/dbt-artifacts", runs_api.get_dbt_artifacts),  # ours: dbt_output.artifacts_link
    # ours: backfills (api/backfills.py)
    ("jobs/backfill", backfills_api.create),
    ("jobs/backfills/get", backfills_api.get),
    ("jobs/backfills/list", backfills_api.list_backfills),
    ("jobs/backfills/cancel", backfills_api.cancel),
    ("jobs/backfills/repair-failed", backfills_api.repair_failed),
]

urlpatterns = [
    path(f"api/{version}/{route}", view, {"api_version": version}, name=f"{route.replace('/', '-')}-{version}")
    for version in API_VERSIONS
    for route, view in ENDPOINTS
] + [
    # Jobs API 2.0: the single-task format, translated (api/jobs_2_0.py).
    path(f"api/2.0/{route}", view, {"api_version": "2.0"}, name=f"{route.replace('/', '-')}-2.0")
    for route, view in jobs_2_0.ENDPOINTS
] + [
    path(f"{SCIM}/Me", scim.me, name="scim-me"),
    path(f"{SCIM}/Users", methods(get=scim.list_users, post=scim.create_user), name="scim-users"),
    path(f"{SCIM}/Users/<str:user_id>", methods(get=scim.get_user, put=scim.replace_user, patch=scim.patch_user,
                                                      delete=scim.delete_user), name="scim-user"),
    path(f"{SCIM}/Groups", methods(get=scim.list_groups, post=scim.create_group), name="scim-groups"),
    path(f"{SCIM}/Groups/<str:group_id>", methods(get=scim.get_group, put=scim.replace_group,
                                                        patch=scim.patch_group, delete=scim.delete_group),
         name="scim-group"),
    path(f"{SCIM}/ServicePrincipals", methods(get=scim.list_service_principals,
                                                   post=scim.create_service_principal), name="scim-sps"),
    path(f"{SCIM}/ServicePrincipals/<str:user_id>", methods(
        get=scim.get_service_principal, put=scim.replace_service_principal, patch=scim.patch_service_principal,
        delete=scim.delete_service_principal), name="scim-sp"),
    path("api/2.0/token/create", tokens.create_token, name="token-create"),
    path("api/2.0/token/list", tokens.list_tokens, name="token-list"),
    path("api/2.0/token/delete", tokens.delete_token, name="token-delete"),
    path("api/2.0/token-management/tokens", tokens.manage_list_tokens, name="token-management-list"),
    path("api/2.0/token-management/tokens/<str:token_id>", methods(
        get=tokens.manage_get_token, delete=tokens.manage_delete_token), name="token-management-token"),
    path("api/2.0/token-management/on-behalf-of/tokens", tokens.create_on_behalf_of, name="token-on-behalf-of"),
    path("api/2.0/permissions/jobs/<str:job_id>", methods(
        get=permissions.get_permissions, put=permissions.set_permissions, patch=permissions.update_permissions),
        name="job-permissions"),
    path("api/2.0/permissions/jobs/<str:job_id>/permissionLevels", permissions.get_permission_levels,
         name="job-permission-levels"),
    path("api/2.0/lakeflow/audit-log", audit.list_audit_events, name="audit-log"),
    path("api/2.0/sql/warehouses", methods(get=warehouses_api.list_warehouses, post=warehouses_api.create_warehouse),
         name="sql-warehouses"),
    path("api/2.0/sql/warehouses/<str:warehouse_id>", methods(
        get=warehouses_api.get_warehouse, delete=warehouses_api.delete_warehouse), name="sql-warehouse"),
    path("api/2.0/sql/warehouses/<str:warehouse_id>/edit", warehouses_api.edit_warehouse, name="sql-warehouse-edit"),
    path("api/2.0/sql/warehouses/<str:warehouse_id>/start", warehouses_api.start_warehouse,
         name="sql-warehouse-start"),
    path("api/2.0/sql/warehouses/<str:warehouse_id>/stop", warehouses_api.stop_warehouse, name="sql-warehouse-stop"),
    path("api/2.0/permissions/warehouses/<str:warehouse_id>", warehouses_api.get_warehouse_permissions,
         name="warehouse-permissions"),
] + [
    path(f"api/2.0/secrets/{route}", view, name=f"secrets-{route.replace('/', '-')}")
    for route, view in [
        ("scopes/create", secrets_api.create_scope), ("scopes/delete", secrets_api.delete_scope),
        ("scopes/list", secrets_api.list_scopes), ("put", secrets_api.put_secret),
        ("delete", secrets_api.delete_secret), ("list", secrets_api.list_secrets), ("get", secrets_api.get_secret),
        ("acls/put", secrets_api.put_acl), ("acls/delete", secrets_api.delete_acl),
        ("acls/get", secrets_api.get_acl), ("acls/list", secrets_api.list_acls),
    ]
] + [
    path(f"api/2.0/workspace/{route}", view, name=f"workspace-{route}")
    for route, view in [
        ("import", workspace_api.import_object), ("export", workspace_api.export_object),
        ("mkdirs", workspace_api.mkdirs), ("delete", workspace_api.delete),
        ("get-status", workspace_api.get_status), ("list", workspace_api.list_objects),
    ]
] + [
    path("api/2.0/git-credentials", git_credentials_api.collection, name="git-credentials"),
    path("api/2.0/git-credentials/<int:credential_id>", git_credentials_api.one, name="git-credential"),
    path("api/2.0/notification-destinations", destinations_api.collection, name="notification-destinations"),
    path("api/2.0/notification-destinations/<str:destination_id>", destinations_api.one,
         name="notification-destination"),
    path("api/2.0/workspace-files/import-file/<path:file_path>", workspace_api.import_file,
         name="workspace-files-import-file"),
    path("api/v1/lineage", lineage_api.openlineage_events, name="openlineage-events"),
    path("api/2.0/lineage-tracking/table-lineage", lineage_api.table_lineage, name="table-lineage"),
    path("api/2.0/lineage-tracking/column-lineage", lineage_api.column_lineage, name="column-lineage"),
    path("api/2.0/lineage-tracking/system/table_lineage", lineage_api.system_table_lineage,
         name="system-table-lineage"),
    path("api/2.0/lineage-tracking/system/column_lineage", lineage_api.system_column_lineage,
         name="system-column-lineage"),
    path("api/2.2/openapi.json", openapi, name="openapi"),
    path(".well-known/databricks-config", databricks_config, name="databricks-config"),
    re_path(r"^api/", endpoint_not_found, name="endpoint-not-found"),
]
