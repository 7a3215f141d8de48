"""Every SQL warehouse of this server, configured and created, and what changes them.

- Configured: the embedded DuckDB `default` and LAKEFLOW_WAREHOUSES (settings). Their ids are
  their names there; always RUNNING; read-only (ConfiguredReadOnly names the variable).
- Created (models.Warehouse): a DuckDB file of its own, ``<id>.duckdb`` beside the embedded one
  (the task user owns that directory, so the first task to query it makes the file as the task
  user), or a Postgres database given by the ``lakeflow.connection_url`` custom tag, kept
  encrypted and never answered.

Tasks name a warehouse by id; ``urls_for_task`` gives the worker the URLs the executors take,
starting a stopped warehouse (Databricks' auto-start) and refusing a deleted one.
"""

import contextlib
import datetime as dt
import logging
import os
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from lakeflow_site.home import embedded_warehouse
from vault.crypto import decrypt, encrypt
from warehouses.models import Warehouse

log = logging.getLogger(__name__)

CONNECTION_TAG = "lakeflow.connection_url"
CONFIGURED_BY_TAG = "lakeflow.configured_by"
EMBEDDED = "default"
CREATED_ID = re.compile(r"[0-9a-f]{16}")
DELETED_DIRECTORY = "deleted"  # beside the files: where a deleted warehouse's file is kept
S = Warehouse.State


class WarehouseRefused(Exception):
    """A change this server will not make; `error_code` and `http_status` say how to answer."""

    error_code, http_status = "INVALID_PARAMETER_VALUE", 400


class ConfiguredReadOnly(WarehouseRefused):
    error_code = "INVALID_STATE"


class WarehouseDeleted(WarehouseRefused):
    error_code = "INVALID_STATE"


class NameTaken(WarehouseRefused):
    error_code = "RESOURCE_ALREADY_EXISTS"


class NoSuchWarehouse(WarehouseRefused):
    error_code, http_status = "RESOURCE_DOES_NOT_EXIST", 404


@dataclass(frozen=True)
class Configured:
    """A warehouse of the settings: it has an id and a URL, nothing else."""

    id: str
    url: str

    state = S.RUNNING

    @property
    def name(self):
        return self.id


def configured():
    return {id_: Configured(id_, url) for id_, url in settings.LAKEFLOW_WAREHOUSES.items()}


def configured_refusal(warehouse_id, doing):
    where = "the embedded DuckDB warehouse" if warehouse_id == EMBEDDED else "set by LAKEFLOW_WAREHOUSES"
    return ConfiguredReadOnly(f"SQL warehouse {warehouse_id} is {where}: it cannot be {doing} through the API; "
                              "change the LAKEFLOW_WAREHOUSES environment variable and restart the server instead")


# --- reading -----------------------------------------------------------------------------------


def live():
    return Warehouse.objects.exclude(state=S.DELETED)


def listed():
    """Every warehouse list shows: configured first (by id), then created ones by name."""
    return [*sorted(configured().values(), key=lambda w: w.id), *live().order_by("name", "id")]


def find(warehouse_id):
    """The warehouse with this id, deleted ones too; NoSuchWarehouse otherwise."""
    found = configured().get(warehouse_id)
    if found is None and CREATED_ID.fullmatch(warehouse_id or ""):
        found = Warehouse.objects.filter(id=warehouse_id).first()
    if found is None:
        raise NoSuchWarehouse(f"SQL warehouse {warehouse_id} does not exist.")
    return found


def choices():
    """(id, name) of every warehouse a task may name, for the job form's picker."""
    return [(w.id, w.name) for w in listed()]


def warehouse_ids():
    """The ids a task may name now (deleted ones are gone)."""
    return set(settings.LAKEFLOW_WAREHOUSES) | set(live().values_list("id", flat=True))


def url_of(warehouse):
    """The URL the executors connect with (it may hold a password: never answer it)."""
    if isinstance(warehouse, Configured):
        return warehouse.url
    if warehouse.is_postgres:
        return decrypt(warehouse.encrypted_connection).decode()
    return f"duckdb:///{duckdb_file(warehouse.id)}"


def duckdb_file(warehouse_id):
    return embedded_warehouse(settings.LAKEFLOW_TASK_HOME).with_name(f"{warehouse_id}.duckdb")


def named_by(task):
    """The warehouse id a sql_task or dbt_task names (dbt's default: the embedded one), else None."""
    if "sql_task" in task:
        return (task.get("sql_task") or {}).get("warehouse_id")
    if "dbt_task" in task:
        return (task.get("dbt_task") or {}).get("warehouse_id") or EMBEDDED
    return None


def urls_for_task(task, now):
    """{id: url} for the executors: the configured warehouses and the created one the task names,
    if live; a stopped one is started first (a query on it starts it, as on Databricks).
    WarehouseDeleted if the task names a deleted one; an id that never existed is left to the
    executor, which names the warehouses there are."""
    urls = dict(settings.LAKEFLOW_WAREHOUSES)
    warehouse_id = named_by(task)
    if not isinstance(warehouse_id, str) or warehouse_id in urls or not CREATED_ID.fullmatch(warehouse_id):
        return urls
    warehouse = Warehouse.objects.filter(id=warehouse_id).first()
    if warehouse is None:
        return urls
    if warehouse.state == S.DELETED:
        raise WarehouseDeleted(f"SQL warehouse '{warehouse.name}' ({warehouse_id}) was deleted")
    if warehouse.state == S.STOPPED:
        Warehouse.objects.filter(id=warehouse_id, state=S.STOPPED).update(state=S.RUNNING, started_at=now)
    urls[warehouse_id] = url_of(warehouse)
    return urls


# --- the connection tag --------------------------------------------------------------------------


def connection_problem(url):
    """Why `url` cannot be a created warehouse's connection, or None. Only Postgres: a DuckDB
    warehouse is a file the server places itself."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme not in ("postgresql", "postgres"):
        return "must be a postgresql:// URL (a created warehouse without one is a DuckDB file of its own)"
    if not parts.hostname or not parts.path.strip("/"):
        return "must name a host and a database: postgresql://user:password@host:5432/database"
    return None if port is None or port > 0 else "has port 0"


def safe_location(url):
    """(host, port, database) of a Postgres URL, without user or password."""
    parts = urlsplit(url)
    return parts.hostname, parts.port or 5432, parts.path.strip("/")


# --- changing ----------------------------------------------------------------------------------


def new_id():
    while True:
        candidate = secrets.token_hex(8)
        if candidate not in settings.LAKEFLOW_WAREHOUSES and not Warehouse.objects.filter(id=candidate).exists():
            return candidate


def check_name_free(name, warehouse_id=None):
    if name in settings.LAKEFLOW_WAREHOUSES or live().filter(name=name).exclude(id=warehouse_id).exists():
        raise NameTaken(f"name: a SQL warehouse named {name!r} already exists")


def create(fields, connection_url, user):
    """A new RUNNING warehouse from validated `fields` (model field values)."""
    check_name_free(fields["name"])
    now = timezone.now()
    warehouse = Warehouse(id=new_id(), state=S.RUNNING, started_at=now, created_at=now, creator=user,
                          creator_name=user.get_username(), **fields)
    if connection_url:
        warehouse.encrypted_connection = encrypt(connection_url.encode())
    try:
        with transaction.atomic():
            warehouse.save(force_insert=True)
    except IntegrityError:  # another create took the name between the check and the insert
        raise NameTaken(f"name: a SQL warehouse named {fields['name']!r} already exists") from None
    return warehouse


def editable(warehouse_id, doing):
    warehouse = find(warehouse_id)
    if isinstance(warehouse, Configured):
        raise configured_refusal(warehouse_id, doing)
    if warehouse.state == S.DELETED:
        raise WarehouseDeleted(f"SQL warehouse {warehouse_id} is deleted")
    return warehouse


def edit(warehouse_id, fields, connection_url):
    warehouse = editable(warehouse_id, "edited")
    if "name" in fields:
        check_name_free(fields["name"], warehouse_id)
    for name, value in fields.items():
        setattr(warehouse, name, value)
    if connection_url:
        warehouse.encrypted_connection = encrypt(connection_url.encode())
    changed = [*fields, *(["encrypted_connection"] if connection_url else [])]
    if not changed:
        return warehouse
    try:  # only what was given: a stop or delete meanwhile keeps its state
        with transaction.atomic():
            warehouse.save(update_fields=changed)
    except IntegrityError:
        raise NameTaken(f"name: a SQL warehouse named {fields.get('name')!r} already exists") from None
    return warehouse


def start(warehouse_id):
    """Start a stopped warehouse; a running one (configured ones are) stays as it is."""
    warehouse = find(warehouse_id)
    if isinstance(warehouse, Configured):
        return warehouse
    if warehouse.state == S.DELETED:
        raise WarehouseDeleted(f"SQL warehouse {warehouse_id} is deleted")
    Warehouse.objects.filter(id=warehouse_id, state=S.STOPPED).update(state=S.RUNNING, started_at=timezone.now())
    return find(warehouse_id)


def stop(warehouse_id):
    editable(warehouse_id, "stopped")
    Warehouse.objects.filter(id=warehouse_id, state=S.RUNNING).update(state=S.STOPPED, stopped_at=timezone.now())
    return find(warehouse_id)


def delete(warehouse_id):
    """DELETED (get still answers it; list and tasks no longer see it). As on Databricks, deleting
    a warehouse keeps its data: the DuckDB file is moved aside into ``deleted/`` (see
    keep_duckdb_files), where an admin can open it again. A deleted warehouse's delete changes
    nothing."""
    warehouse = find(warehouse_id)
    if isinstance(warehouse, Configured):
        raise configured_refusal(warehouse_id, "deleted")
    now = timezone.now()
    changed = Warehouse.objects.filter(id=warehouse_id).exclude(state=S.DELETED).update(
        state=S.DELETED, deleted_at=now)
    if changed and not warehouse.is_postgres:
        transaction.on_commit(lambda: keep_duckdb_files(warehouse_id, now))


def kept_name(warehouse_id, deleted_at):
    """The name a deleted warehouse's file is kept under in ``deleted/``: one per delete, as the
    id is never given again."""
    return f"{warehouse_id}-{deleted_at.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}.duckdb"


def keep_duckdb_files(warehouse_id, deleted_at):
    """Move the file and its WAL into ``<warehouse dir>/deleted/`` and drop its lock file.

    Tasks write the warehouse directory, so both directories are opened without following a link
    and the files renamed relative to them: a link a task planted for the file is moved as the
    link, a `deleted` that is a link is refused. Where this process may not (another machine's
    files, another user's directory) the files stay where they are; either way the log says."""
    path = duckdb_file(warehouse_id)
    kept = kept_name(warehouse_id, deleted_at)
    if not os.path.isdir(path.parent):
        return  # no task ever queried a warehouse here: no data to keep
    try:
        with directory_opened(path.parent) as directory:
            present = [name for name in (path.name, f"{path.name}.wal") if exists_in(directory, name)]
            if present:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(DELETED_DIRECTORY, mode=0o700, dir_fd=directory)
                with directory_opened(DELETED_DIRECTORY, directory) as deleted:
                    for name in present:  # the file first: a WAL is no use without it
                        target = kept + name.removeprefix(path.name)
                        os.rename(name, target, src_dir_fd=directory, dst_dir_fd=deleted)
                        log.info("the deleted SQL warehouse %s's %s is kept as %s", warehouse_id, name,
                                 path.parent / DELETED_DIRECTORY / target)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path.name}.lock", dir_fd=directory)
    except OSError as exc:
        log.warning("the deleted SQL warehouse %s keeps its files in %s: %s", warehouse_id, path.parent, exc)


@contextlib.contextmanager
def directory_opened(name, dir_fd=None):
    """A descriptor of directory `name`, refused (OSError) if it is a link."""
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def exists_in(directory, name):
    try:
        os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
