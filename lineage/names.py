"""What a dataset is called here, whoever names it.

- Tables: ``<warehouse>.<schema>.<table>`` in lower case, the names SQL capture and table-update
  triggers use. Declared with two parts (``schema.table``), a table is in the ``default`` warehouse.
- Paths: ``/Volumes/...``, ``/Workspace/...``, ``dbfs:/...``, local and object-store paths, with
  no trailing slash.
- OpenLineage datasets: namespace ``lakeflow`` and a table name; or a warehouse's own connection
  URI as namespace (as OpenLineage integrations name data sources: ``postgres://host:5432``,
  ``duckdb:///path``) and ``<schema>.<table>`` or ``<database>.<schema>.<table>``; ``file`` and
  object-store namespaces are paths.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_WAREHOUSE = "default"
NAMESPACE = "lakeflow"
_TABLE_PART = r'[^./\s"]+'
_TABLE = re.compile(rf"^{_TABLE_PART}(\.{_TABLE_PART}){{1,2}}$")


class NameRefused(ValueError):
    """Not a table name or a path."""


@dataclass(frozen=True)
class DatasetName:
    name: str
    kind: str  # TABLE or PATH


def declared_dataset(text):
    """A name a task gave dbutils.lineage.record."""
    text = text.strip()
    if _is_path(text):
        return DatasetName(_path(text), "PATH")
    if _TABLE.match(text):
        parts = text.lower().split(".")
        return DatasetName(".".join([DEFAULT_WAREHOUSE, *parts] if len(parts) == 2 else parts), "TABLE")
    raise NameRefused(f"{text!r} is neither a table (<warehouse>.<schema>.<table>) nor a path")


def table_dataset(name):
    """A <warehouse>.<schema>.<table> from SQL capture or a trigger."""
    return DatasetName(name.lower(), "TABLE")


def openlineage_dataset(namespace, name, warehouses):
    """The dataset an OpenLineage (namespace, name) is; warehouses: {id: connection URL}."""
    namespace, name = namespace.strip(), name.strip()
    if not namespace or not name:
        raise NameRefused("a dataset needs a namespace and a name")
    if namespace == NAMESPACE:
        return declared_dataset(name)
    warehouse = _warehouse_of(namespace, warehouses)
    if warehouse is not None:
        parts = name.lower().split(".")
        if len(parts) not in (2, 3) or not all(parts):
            raise NameRefused(f"{name!r} in warehouse {warehouse} is not <schema>.<table>")
        return DatasetName(".".join([warehouse, *parts[-2:]]), "TABLE")
    if namespace == "file" or namespace.startswith("file:"):
        return DatasetName(_path(name if name.startswith("/") else "/" + name), "PATH")
    if "://" in namespace or namespace.startswith("dbfs:"):  # s3://bucket, gs://bucket, abfss://...
        return DatasetName(_path(f"{namespace.rstrip('/')}/{name.lstrip('/')}"), "PATH")
    raise NameRefused(f"namespace {namespace!r} is not '{NAMESPACE}', a configured warehouse's URI, "
                      "'file' or a storage URI")


def _warehouse_of(namespace, warehouses):
    """The warehouse whose URL the namespace names: same scheme family, host and port (and
    database or file, where the namespace gives one)."""
    asked = _location(namespace)
    for warehouse_id, url in sorted(warehouses.items()):
        known = _location(url)
        if asked[:3] == known[:3] and (not asked[3] or asked[3] == known[3]):
            return warehouse_id
    return None


def _location(url):
    parts = urlsplit(url)
    scheme = {"postgresql": "postgres"}.get(parts.scheme, parts.scheme)
    if scheme == "duckdb":
        return scheme, "", "", parts.path.lstrip("/")
    host = (parts.hostname or "").lower()
    host = {"localhost": "127.0.0.1"}.get(host, host)
    return scheme, host, parts.port or (5432 if scheme == "postgres" else None), parts.path.strip("/")


def _is_path(text):
    return text.startswith("/") or bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", text))


def _path(text):
    return text.rstrip("/") or "/"
