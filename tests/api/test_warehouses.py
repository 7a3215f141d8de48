"""The SQL Warehouses API (w.warehouses): the SDK's shapes, Databricks' validation, admins write
and everyone reads, configured warehouses read-only, and the stop/start/edit/delete lifecycle."""

import datetime as dt
import json
import logging
import re

import pytest
from databricks.sdk.service.sql import EndpointInfo, GetWarehouseResponse, State

from audit.models import AuditEvent
from tests.api.conftest import client_for, create_job, make_user
from warehouses.models import Warehouse

BASE = "/api/2.0/sql/warehouses"


class Warehouses:
    """Calls under /api/2.0/sql/warehouses with one user's token."""

    def __init__(self, client, api):
        self.client, self.headers = client, api.headers()

    def call(self, method, path="", body=None):
        kwargs = {"content_type": "application/json", "data": json.dumps(body)} if body is not None else {}
        return getattr(self.client, method)(f"{BASE}{path}", headers=self.headers, **kwargs)

    def ok(self, method, path="", body=None):
        response = self.call(method, path, body)
        assert response.status_code == 200, response.content.decode()[:2000]
        return response.json()

    def create(self, **body):
        return self.ok("post", body={"name": "analytics", "cluster_size": "2X-Small", **body})["id"]

    def get(self, warehouse_id):
        return self.ok("get", f"/{warehouse_id}")

    def listed(self):
        return {w["id"]: w for w in self.ok("get")["warehouses"]}


@pytest.fixture
def admin(db, client):
    return Warehouses(client, client_for(client, make_user("root", is_superuser=True)))


@pytest.fixture
def user(db, client):
    return Warehouses(client, client_for(client, make_user("bob")))


@pytest.fixture(autouse=True)
def configured(settings, tmp_path):
    settings.LAKEFLOW_TASK_HOME = tmp_path / "tasks"
    settings.LAKEFLOW_WAREHOUSES = {"default": f"duckdb:///{tmp_path}/tasks/warehouse/warehouse.duckdb",
                                    "pg": "postgresql://someone:hunter2@db.internal:6432/analytics"}


def test_a_created_warehouse_answers_in_the_sdks_shape(admin, settings):
    warehouse_id = admin.create(max_num_clusters=2, auto_stop_mins=0, warehouse_type="PRO",
                                tags={"custom_tags": [{"key": "team", "value": "finance"}]})

    body = admin.get(warehouse_id)
    info = GetWarehouseResponse.from_dict(body)
    assert re.fullmatch(r"[0-9a-f]{16}", warehouse_id)
    assert (info.id, info.name, info.state, info.cluster_size) == (warehouse_id, "analytics", State.RUNNING, "2X-Small")
    assert (info.min_num_clusters, info.max_num_clusters, info.num_clusters, info.auto_stop_mins) == (1, 2, 1, 0)
    assert info.warehouse_type.value == "PRO" and info.enable_serverless_compute is False
    assert info.creator_name == "root"
    assert info.tags.as_dict() == {"custom_tags": [{"key": "team", "value": "finance"}]}
    assert info.health.status.value == "HEALTHY"
    assert body["jdbc_url"] == f"jdbc:duckdb:{settings.LAKEFLOW_TASK_HOME}/warehouse/{warehouse_id}.duckdb"
    assert EndpointInfo.from_dict(admin.listed()[warehouse_id]).name == "analytics"


def test_defaults_are_databricks_ones(admin):
    body = admin.get(admin.ok("post", body={"name": "plain"})["id"])

    assert {k: body[k] for k in ("cluster_size", "min_num_clusters", "max_num_clusters", "auto_stop_mins",
                                 "warehouse_type", "enable_photon", "spot_instance_policy")} == {
        "cluster_size": "2X-Small", "min_num_clusters": 1, "max_num_clusters": 1, "auto_stop_mins": 120,
        "warehouse_type": "CLASSIC", "enable_photon": True, "spot_instance_policy": "COST_OPTIMIZED"}


def test_configured_warehouses_are_listed_running_under_their_own_ids(user):
    listed = user.listed()

    assert {"default", "pg"} <= set(listed)
    assert listed["default"]["state"] == "RUNNING"
    assert listed["default"]["tags"] == {"custom_tags": [{"key": "lakeflow.configured_by", "value": "embedded"}]}
    # Where the Postgres one is, never who connects with what password.
    pg = user.get("pg")
    assert pg["odbc_params"] == {"hostname": "db.internal", "port": 6432, "path": "/analytics", "protocol": "postgresql"}
    assert pg["jdbc_url"] == "jdbc:postgresql://db.internal:6432/analytics"
    assert "hunter2" not in json.dumps(listed) and "someone" not in json.dumps(pg)


@pytest.mark.parametrize("method, path, body", [
    ("post", "/pg/edit", {"name": "renamed"}),
    ("delete", "/pg", None),
    ("post", "/default/stop", {}),
    ("post", "/default/edit", {"cluster_size": "Small"}),
])
def test_configured_warehouses_cannot_be_changed_through_the_api(admin, method, path, body):
    response = admin.call(method, path, body)

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_STATE"
    assert "LAKEFLOW_WAREHOUSES" in response.json()["message"]
    assert admin.get(path.split("/")[1])["state"] == "RUNNING"


def test_starting_a_configured_warehouse_changes_nothing(admin):
    assert admin.ok("post", "/default/start", {}) == {}
    assert admin.get("default")["state"] == "RUNNING"


@pytest.mark.parametrize("body, field", [
    ({"cluster_size": "Small"}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 100}, "name"),
    ({"name": "a", "cluster_size": "Tiny"}, "cluster_size"),
    ({"name": "a", "auto_stop_mins": 5}, "auto_stop_mins"),
    ({"name": "a", "auto_stop_mins": -1}, "auto_stop_mins"),
    ({"name": "a", "min_num_clusters": 0}, "min_num_clusters"),
    ({"name": "a", "max_num_clusters": 41}, "max_num_clusters"),
    ({"name": "a", "min_num_clusters": 3, "max_num_clusters": 2}, "min_num_clusters"),
    ({"name": "a", "enable_serverless_compute": True, "warehouse_type": "CLASSIC"}, "warehouse_type"),
    ({"name": "a", "warehouse_type": "SERVERLESS"}, "warehouse_type"),
    ({"name": "a", "tags": {"custom_tags": "team=x"}}, "tags.custom_tags"),
    ({"name": "a", "tags": {"custom_tags": [{"key": "lakeflow.connection_url", "value": "mysql://h/db"}]}},
     "lakeflow.connection_url"),
    ({"name": "a", "tags": {"custom_tags": [{"key": "lakeflow.connection_url", "value": "duckdb:////etc/x"}]}},
     "lakeflow.connection_url"),
])
def test_invalid_fields_are_refused_naming_the_field(admin, body, field):
    response = admin.call("post", body=body)

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in response.json()["message"]
    assert not Warehouse.objects.exists()


@pytest.mark.parametrize("taken", ["analytics", "default"])
def test_a_name_in_use_is_refused(admin, taken):
    admin.create(name="analytics")

    response = admin.call("post", body={"name": taken})

    assert response.status_code == 400
    assert response.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert Warehouse.objects.count() == 1


def test_only_admins_change_warehouses_and_everyone_reads_them(admin, user):
    warehouse_id = admin.create()

    for method, path, body in [("post", "", {"name": "mine"}), ("post", f"/{warehouse_id}/edit", {"name": "b"}),
                               ("post", f"/{warehouse_id}/stop", {}), ("post", f"/{warehouse_id}/start", {}),
                               ("delete", f"/{warehouse_id}", None)]:
        response = user.call(method, path, body)
        assert response.status_code == 403, (method, path)
        assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert user.get(warehouse_id)["state"] == "RUNNING"
    assert user.listed()[warehouse_id]["name"] == "analytics"
    assert Warehouse.objects.count() == 1


def test_an_unknown_warehouse_is_404(user):
    for path in ("/0123456789abcdef", "/no-such-thing"):
        response = user.call("get", path)
        assert response.status_code == 404
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_stop_start_edit_and_delete(admin, settings, django_capture_on_commit_callbacks):
    warehouse_id = admin.create(tags={"custom_tags": [{"key": "team", "value": "finance"}]})

    assert admin.ok("post", f"/{warehouse_id}/stop", {}) == {}
    assert admin.get(warehouse_id)["state"] == "STOPPED"
    assert admin.get(warehouse_id)["num_clusters"] == 0
    admin.ok("post", f"/{warehouse_id}/start", {})
    assert admin.get(warehouse_id)["state"] == "RUNNING"

    admin.ok("post", f"/{warehouse_id}/edit", {"name": "renamed", "cluster_size": "Medium", "max_num_clusters": 4})
    body = admin.get(warehouse_id)
    assert (body["name"], body["cluster_size"], body["max_num_clusters"]) == ("renamed", "Medium", 4)
    assert body["tags"] == {"custom_tags": [{"key": "team", "value": "finance"}]}  # not given: kept
    refused = admin.call("post", f"/{warehouse_id}/edit", {"min_num_clusters": 5})
    assert refused.status_code == 400 and "min_num_clusters" in refused.json()["message"]

    duckdb_file = settings.LAKEFLOW_TASK_HOME / "warehouse" / f"{warehouse_id}.duckdb"
    duckdb_file.parent.mkdir(parents=True)
    duckdb_file.write_bytes(b"a table or two")
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.ok("delete", f"/{warehouse_id}") == {}
    assert admin.get(warehouse_id)["state"] == "DELETED"
    assert warehouse_id not in admin.listed()
    assert not duckdb_file.exists()
    [kept] = (duckdb_file.parent / "deleted").iterdir()  # deleting a warehouse never deletes data
    assert kept.read_bytes() == b"a table or two" and kept.name.startswith(f"{warehouse_id}-")
    again = admin.call("post", f"/{warehouse_id}/start", {})
    assert again.status_code == 400 and "deleted" in again.json()["message"]
    assert admin.ok("delete", f"/{warehouse_id}") == {}  # a second delete changes nothing
    assert admin.create(name="renamed") != warehouse_id  # the name is free again


def test_a_deleted_warehouse_keeps_its_file_and_wal_under_deleted_and_drops_its_lock(admin, settings, caplog,
                                                                                    django_capture_on_commit_callbacks):
    warehouse_id = admin.create()
    directory = settings.LAKEFLOW_TASK_HOME / "warehouse"
    directory.mkdir(parents=True)
    for suffix, content in ((".duckdb", b"tables"), (".duckdb.wal", b"last writes"), (".duckdb.lock", b"")):
        (directory / f"{warehouse_id}{suffix}").write_bytes(content)

    with caplog.at_level(logging.INFO, logger="warehouses.catalog"):
        with django_capture_on_commit_callbacks(execute=True):
            admin.ok("delete", f"/{warehouse_id}")

    deleted_at = Warehouse.objects.get(id=warehouse_id).deleted_at.astimezone(dt.timezone.utc)
    kept = directory / "deleted" / f"{warehouse_id}-{deleted_at:%Y%m%dT%H%M%SZ}.duckdb"
    assert kept.read_bytes() == b"tables"
    assert kept.with_name(f"{kept.name}.wal").read_bytes() == b"last writes"
    assert sorted(path.name for path in directory.iterdir()) == ["deleted"]
    assert str(kept) in caplog.text


def test_a_deleted_warehouse_never_follows_a_link_a_task_planted(admin, settings, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_bytes(b"not the warehouse's")
    directory = settings.LAKEFLOW_TASK_HOME / "warehouse"
    directory.mkdir(parents=True)
    linked, redirected = admin.create(name="linked"), admin.create(name="redirected")
    (directory / f"{linked}.duckdb").symlink_to(elsewhere / "precious")
    (directory / f"{redirected}.duckdb").write_bytes(b"tables")

    with django_capture_on_commit_callbacks(execute=True):
        admin.ok("delete", f"/{linked}")
    [moved] = (directory / "deleted").iterdir()
    assert moved.is_symlink() and (elsewhere / "precious").read_bytes() == b"not the warehouse's"
    # A task swaps `deleted` for a link out: the file stays where it is rather than follow it.
    (directory / "deleted").rename(directory / "old")
    (directory / "deleted").symlink_to(elsewhere)
    with django_capture_on_commit_callbacks(execute=True):
        admin.ok("delete", f"/{redirected}")

    assert (directory / f"{redirected}.duckdb").read_bytes() == b"tables"
    assert sorted(path.name for path in elsewhere.iterdir()) == ["precious"]
    assert admin.get(redirected)["state"] == "DELETED"


def test_a_postgres_connection_is_kept_encrypted_and_never_answered(admin):
    url = "postgresql://loader:s3cret-pw@pg.example:5433/sales"
    warehouse_id = admin.create(tags={"custom_tags": [{"key": "lakeflow.connection_url", "value": url},
                                                      {"key": "team", "value": "sales"}]})

    body = admin.get(warehouse_id)
    assert body["odbc_params"] == {"hostname": "pg.example", "port": 5433, "path": "/sales", "protocol": "postgresql"}
    assert body["tags"] == {"custom_tags": [{"key": "team", "value": "sales"}]}
    assert "s3cret-pw" not in json.dumps(admin.ok("get"))
    assert b"s3cret-pw" not in bytes(Warehouse.objects.get(id=warehouse_id).encrypted_connection)
    logged = AuditEvent.objects.get(action_name="createWarehouse")
    assert logged.service_name == "databrickssql"
    assert "s3cret-pw" not in json.dumps(logged.request_params)
    # A DuckDB warehouse stays one.
    duck = admin.create(name="duck")
    refused = admin.call("post", f"/{duck}/edit", {"tags": {"custom_tags": [
        {"key": "lakeflow.connection_url", "value": url}]}})
    assert refused.status_code == 400 and "lakeflow.connection_url" in refused.json()["message"]


def test_every_change_is_in_the_audit_log_under_databricks_names(admin):
    warehouse_id = admin.create()
    admin.ok("post", f"/{warehouse_id}/edit", {"name": "b"})
    admin.ok("post", f"/{warehouse_id}/stop", {})
    admin.ok("post", f"/{warehouse_id}/start", {})
    admin.ok("delete", f"/{warehouse_id}")

    assert list(AuditEvent.objects.order_by("id").values_list("service_name", "action_name")) == [
        ("databrickssql", action) for action in
        ("createWarehouse", "editWarehouse", "stopWarehouse", "startWarehouse", "deleteWarehouse")]


def test_the_permissions_say_admins_manage_and_users_use(admin):
    warehouse_id = admin.create()

    body = admin.client.get(f"/api/2.0/permissions/warehouses/{warehouse_id}", headers=admin.headers).json()

    assert body["object_id"] == f"/sql/warehouses/{warehouse_id}"
    assert [(e.get("user_name") or e.get("group_name"), e["all_permissions"][0]["permission_level"])
            for e in body["access_control_list"]] == [("root", "IS_OWNER"), ("admins", "CAN_MANAGE"),
                                                      ("users", "CAN_USE")]


def test_a_job_may_name_a_created_warehouse_until_it_is_deleted(admin, client):
    warehouse_id = admin.create()
    author = client_for(client, make_user("carol"))
    task = {"task_key": "q", "sql_task": {"warehouse_id": warehouse_id, "query": {"query_text": "select 1"}}}

    create_job(author, tasks=[task])
    admin.ok("delete", f"/{warehouse_id}")
    refused = author.post("jobs/create", {"name": "later", "tasks": [task]})

    assert refused.status_code == 400
    assert f"SQL warehouse '{warehouse_id}' is not configured" in refused.json()["message"]
