"""The SQL Warehouses API, in the shapes of the databricks-sdk's `w.warehouses`: list, create,
get, edit, delete, start, stop under /api/2.0/sql/warehouses, and get_permissions.

Who may do what: any authenticated user lists and gets warehouses and runs tasks on them (every
user has Databricks' CAN_USE); workspace admins create, edit, delete, start and stop them.
Configured warehouses (the embedded `default`, LAKEFLOW_WAREHOUSES) are listed too, read-only.

Fields kept and used: name, cluster_size, min/max_num_clusters, auto_stop_mins, warehouse_type,
enable_serverless_compute, enable_photon, spot_instance_policy, channel.name and tags are kept,
validated as Databricks does and answered back; none changes how queries run (a warehouse here
is a database, not compute). The custom tag `lakeflow.connection_url` (ours) makes a Postgres
warehouse: kept encrypted, never answered (odbc_params and jdbc_url say where it is, without
user or password). Accepted and ignored: creator_name (the caller is the creator),
instance_profile_arn, max_dbu, statement_timeout, customer_version_label,
reyden_cluster_size_multiplier, channel.dbsql_version.
"""

from functools import wraps

from api.http import (ApiError, api_view, bool_param, require_admin, int_param, invalid, object_param, str_param)
from vault.crypto import Unreadable
from warehouses import catalog
from warehouses.catalog import CONFIGURED_BY_TAG, CONNECTION_TAG, EMBEDDED, Configured, WarehouseRefused

SIZES = ("2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large", "4X-Large",
         "5X-Large")
TYPES = ("CLASSIC", "PRO")
SPOT_POLICIES = ("COST_OPTIMIZED", "RELIABILITY_OPTIMIZED", "POLICY_UNSPECIFIED")
CHANNELS = ("CHANNEL_NAME_CURRENT", "CHANNEL_NAME_PREVIEW", "CHANNEL_NAME_PREVIOUS", "CHANNEL_NAME_CUSTOM")
MAX_NAME = 99  # Databricks: "less than 100 characters"
MAX_TAGS = 44  # Databricks: "Number of tags < 45"
MAX_TAG_TEXT = 256
MAX_CONNECTION_URL = 2000
INT32_MAX = 2**31 - 1


def refusals(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except WarehouseRefused as exc:
            raise ApiError(exc.http_status, exc.error_code, str(exc)) from None

    return wrapper


def admin_only(request, doing):
    require_admin(request, f"{doing} SQL warehouses")


# --- the request's fields ----------------------------------------------------------------------


def given_fields(data, *, creating):
    """(model field values given, connection URL or None), each field checked as Databricks does."""
    fields = {}
    name = str_param(data, "name", required=creating, max_length=MAX_NAME)
    if name is not None:
        if not name.strip():
            raise invalid("name must not be empty")
        fields["name"] = name
    readers = {
        "cluster_size": lambda: str_param(data, "cluster_size", choices=SIZES),
        "auto_stop_mins": lambda: auto_stop_mins(data),
        "min_num_clusters": lambda: int_param(data, "min_num_clusters", low=1, high=30),
        "max_num_clusters": lambda: int_param(data, "max_num_clusters", low=1, high=40),
        "warehouse_type": lambda: warehouse_type(data),
        "enable_serverless_compute": lambda: bool_param(data, "enable_serverless_compute", default=None),
        "enable_photon": lambda: bool_param(data, "enable_photon", default=None),
        "spot_instance_policy": lambda: str_param(data, "spot_instance_policy", choices=SPOT_POLICIES),
        "channel": lambda: channel_name(data),
    }
    for field, read in readers.items():
        value = read()
        if value is not None:
            fields[field] = value
    tags, connection_url = custom_tags(data)
    if tags is not None:
        fields["custom_tags"] = tags
    return fields, connection_url


def auto_stop_mins(data):
    minutes = int_param(data, "auto_stop_mins", low=0, high=INT32_MAX)
    if minutes is not None and 0 < minutes < 10:
        raise invalid(f"auto_stop_mins must be 0 (never stop) or at least 10, not {minutes}")
    return minutes


def warehouse_type(data):
    kind = str_param(data, "warehouse_type", choices=(*TYPES, "TYPE_UNSPECIFIED"))
    return None if kind == "TYPE_UNSPECIFIED" else kind


def channel_name(data):
    channel = object_param(data, "channel")
    if channel is None:
        return None
    return str_param(channel, "name", choices=CHANNELS) if channel.get("name") is not None else None


def custom_tags(data):
    """(tags without the connection tag, or None if no tags were given; the connection URL)."""
    tags = object_param(data, "tags")
    if tags is None:
        return None, None
    pairs = tags.get("custom_tags") or []
    if not isinstance(pairs, list):
        raise invalid("tags.custom_tags must be an array of {key, value}")
    if len(pairs) > MAX_TAGS:
        raise invalid(f"tags.custom_tags must have fewer than {MAX_TAGS + 1} tags, not {len(pairs)}")
    kept, connection_url = [], None
    for number, pair in enumerate(pairs):
        where = f"tags.custom_tags[{number}]"
        if not isinstance(pair, dict):
            raise invalid(f"{where} must be an object with key and value")
        key = str_param(pair, "key", required=True, max_length=MAX_TAG_TEXT)
        if not key.strip():
            raise invalid(f"{where}.key must not be empty")
        if key == CONNECTION_TAG:
            connection_url = str_param(pair, "value", required=True, max_length=MAX_CONNECTION_URL)
            problem = catalog.connection_problem(connection_url)
            if problem:
                raise invalid(f"{where}.value: {CONNECTION_TAG} {problem}")
        elif key == CONFIGURED_BY_TAG:
            raise invalid(f"{where}.key: {CONFIGURED_BY_TAG} is the server's own tag for configured warehouses")
        else:
            kept.append({"key": key, "value": str_param(pair, "value", default="", max_length=MAX_TAG_TEXT)})
    if len({pair["key"] for pair in kept}) < len(kept):
        raise invalid("tags.custom_tags has a key twice")
    return kept, connection_url


def clusters_problem(fields):
    """What the fields say together (on edit: with the warehouse's other fields)."""
    if fields["min_num_clusters"] > fields["max_num_clusters"]:
        return (f"min_num_clusters ({fields['min_num_clusters']}) must not be more than max_num_clusters "
                f"({fields['max_num_clusters']})")
    if fields["enable_serverless_compute"] and fields["warehouse_type"] != "PRO":
        return "warehouse_type must be PRO for a warehouse with enable_serverless_compute"
    return None


# --- the answer's shape ------------------------------------------------------------------------


def endpoint_info(warehouse):
    """EndpointInfo / GetWarehouseResponse."""
    if isinstance(warehouse, Configured):
        body = {
            "id": warehouse.id, "name": warehouse.name, "cluster_size": "2X-Small", "min_num_clusters": 1,
            "max_num_clusters": 1, "auto_stop_mins": 0, "warehouse_type": "PRO", "enable_serverless_compute": False,
            "enable_photon": False, "spot_instance_policy": "COST_OPTIMIZED", "channel": {"name": "CHANNEL_NAME_CURRENT"},
            "tags": {"custom_tags": [{"key": CONFIGURED_BY_TAG,
                                      "value": "embedded" if warehouse.id == EMBEDDED else "LAKEFLOW_WAREHOUSES"}]},
        }
    else:
        body = {
            "id": warehouse.id, "name": warehouse.name, "cluster_size": warehouse.cluster_size,
            "min_num_clusters": warehouse.min_num_clusters, "max_num_clusters": warehouse.max_num_clusters,
            "auto_stop_mins": warehouse.auto_stop_mins, "warehouse_type": warehouse.warehouse_type,
            "enable_serverless_compute": warehouse.enable_serverless_compute,
            "enable_photon": warehouse.enable_photon, "spot_instance_policy": warehouse.spot_instance_policy,
            "channel": {"name": warehouse.channel}, "tags": {"custom_tags": list(warehouse.custom_tags)},
            "creator_name": warehouse.creator_name,
        }
    state = str(warehouse.state)
    body.update(state=state, num_clusters=1 if state == "RUNNING" else 0, num_active_sessions=0)
    if state == "RUNNING":
        body["health"] = {"status": "HEALTHY", "summary": "Ready for queries"}
    if state != "DELETED":
        body.update(connection_info(warehouse))
    return body


def connection_info(warehouse):
    """odbc_params and jdbc_url: where the database is, never who connects or with what password."""
    try:
        url = catalog.url_of(warehouse)
    except Unreadable:  # LAKEFLOW_SECRETS_KEY changed: the rest is still worth answering
        return {}
    if url.startswith("duckdb:"):
        return {"jdbc_url": f"jdbc:duckdb:/{url[len('duckdb:'):].lstrip('/')}"}
    try:
        host, port, database = catalog.safe_location(url)
    except ValueError:
        return {}
    if not host:
        return {}
    return {"odbc_params": {"hostname": host, "port": port, "path": f"/{database}", "protocol": "postgresql"},
            "jdbc_url": f"jdbc:postgresql://{host}:{port}/{database}"}


# --- the endpoints -----------------------------------------------------------------------------


@api_view("GET")
def list_warehouses(request, data):
    int_param(data, "page_size", low=0, high=INT32_MAX)  # checked; every warehouse fits one page
    return {"warehouses": [endpoint_info(w) for w in catalog.listed()]}


@api_view("POST")
@refusals
def create_warehouse(request, data):
    admin_only(request, "create")
    fields, connection_url = given_fields(data, creating=True)
    fields.setdefault("cluster_size", "2X-Small")
    fields.setdefault("min_num_clusters", 1)
    fields.setdefault("max_num_clusters", fields["min_num_clusters"])  # Databricks: min's if unset
    fields.setdefault("warehouse_type", "PRO" if fields.get("enable_serverless_compute") else "CLASSIC")
    fields.setdefault("enable_serverless_compute", False)
    problem = clusters_problem(fields)
    if problem:
        raise invalid(problem)
    return {"id": catalog.create(fields, connection_url, request.user).id}


@api_view("GET")
@refusals
def get_warehouse(request, data, warehouse_id):
    return endpoint_info(catalog.find(warehouse_id))


@api_view("POST")
@refusals
def edit_warehouse(request, data, warehouse_id):
    admin_only(request, "edit")
    current = catalog.editable(warehouse_id, "edited")
    fields, connection_url = given_fields(data, creating=False)
    if connection_url and not current.is_postgres:
        raise invalid(f"tags: {CONNECTION_TAG} is given when a warehouse is created; a DuckDB warehouse "
                      "stays one (create a new warehouse for a Postgres database)")
    merged = {name: fields.get(name, getattr(current, name)) for name in
              ("min_num_clusters", "max_num_clusters", "enable_serverless_compute", "warehouse_type")}
    problem = clusters_problem(merged)
    if problem:
        raise invalid(problem)
    catalog.edit(warehouse_id, fields, connection_url)
    return {}


@api_view("DELETE")
@refusals
def delete_warehouse(request, data, warehouse_id):
    admin_only(request, "delete")
    catalog.delete(warehouse_id)
    return {}


@api_view("POST")
@refusals
def start_warehouse(request, data, warehouse_id):
    admin_only(request, "start")
    catalog.start(warehouse_id)
    return {}


@api_view("POST")
@refusals
def stop_warehouse(request, data, warehouse_id):
    admin_only(request, "stop")
    catalog.stop(warehouse_id)
    return {}


@api_view("GET")
@refusals
def get_warehouse_permissions(request, data, warehouse_id):
    """Ours is one rule for every warehouse: admins manage, every user uses; the creator owns."""
    warehouse = catalog.find(warehouse_id)
    entries = [{"group_name": "admins", "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": False}]},
               {"group_name": "users", "all_permissions": [{"permission_level": "CAN_USE", "inherited": False}]}]
    if not isinstance(warehouse, Configured) and warehouse.creator_name:
        entries.insert(0, {"user_name": warehouse.creator_name,
                           "all_permissions": [{"permission_level": "IS_OWNER", "inherited": False}]})
    return {"object_id": f"/sql/warehouses/{warehouse.id}", "object_type": "warehouses",
            "access_control_list": entries}
