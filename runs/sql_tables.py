"""The tables SQL statements write, read with sqlglot in the warehouse's dialect (DuckDB,
Postgres): what table-update triggers watch, and what lineage will record.

A sql_task's process reports the statements that ran, in order (runs/executors/sql.py); the
worker turns them into `<warehouse>.<schema>.<table>` names here (``tables_written``):

- written are the targets of INSERT, CREATE TABLE (AS), UPDATE, DELETE, MERGE, COPY ... FROM,
  TRUNCATE and ALTER TABLE, the data-modifying CTEs of Postgres included; not views, indexes,
  reads, DROPs or temporary tables (created as such, or qualified with ``temp``/``pg_temp``);
- unquoted names are folded to lower case, quoted ones keep theirs, as both databases do; a
  three-part name's first part is the database (the warehouse) and is left out;
- writes inside ``BEGIN`` ... ``COMMIT`` count once committed (a ``ROLLBACK``, a failure, or the
  end of the task inside the transaction drop them; ``ROLLBACK TO SAVEPOINT`` keeps them: better a
  trigger too many than one missed); writes to a temporary table created earlier in the task
  (named without a schema) are left out.

A statement sqlglot cannot read writes nothing we know of: it is logged, not guessed at.
"""

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

log = logging.getLogger(__name__)

DEFAULT_SCHEMAS = {"duckdb": "main", "postgres": "public"}


@dataclass(frozen=True)
class Target:
    parts: tuple  # the name as written, quotes removed, unquoted parts lower-cased
    temporary: bool = False


def transaction_control(text):
    """"begin", "commit", "rollback" (not to a savepoint) or None for one statement's text."""
    words = text.strip().rstrip(";").split()
    first = words[0].upper() if words else ""
    if first in ("BEGIN", "START"):
        return "begin"
    if first in ("COMMIT", "END"):
        return "commit"
    if first in ("ROLLBACK", "ABORT") and "TO" not in (w.upper() for w in words[1:3]):
        return "rollback"
    return None


def targets(text, dialect):
    """The tables one statement's text writes (it may hold several statements)."""
    try:
        statements = sqlglot.parse(text, dialect=dialect)
    except sqlglot.errors.SqlglotError as exc:
        log.warning("cannot read a statement in the %s dialect: %s", dialect, str(exc).splitlines()[0])
        return []
    found = []
    for statement in filter(None, statements):
        found += _targets_of(statement)
    return found


def _targets_of(statement):
    found = []
    if isinstance(statement, exp.Create):
        if str(statement.args.get("kind") or "").upper() == "TABLE":
            found += _table_targets(statement.this, temporary=statement.find(exp.TemporaryProperty) is not None)
    elif isinstance(statement, exp.Copy):
        if statement.args.get("kind"):  # COPY ... FROM loads it; COPY ... TO only reads
            found += _table_targets(statement.this)
    elif isinstance(statement, exp.TruncateTable):
        for table in statement.expressions:
            found += _table_targets(table)
    elif isinstance(statement, exp.Alter):
        if str(statement.args.get("kind") or "").upper() == "TABLE":
            found += _table_targets(statement.this)
    # INSERT, UPDATE, DELETE, MERGE: the statement's own, and those of data-modifying CTEs.
    for node in statement.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge):
        found += _table_targets(node.this)
    return found


def _table_targets(node, temporary=False):
    if isinstance(node, exp.Schema):  # a table with a column list: t (a, b)
        node = node.this
    if not isinstance(node, exp.Table) or not node.name:
        return []
    parts = tuple(_name(part) for part in (node.args.get("catalog"), node.args.get("db"), node.this) if part)
    return [Target(parts, temporary)]


def _name(identifier):
    if isinstance(identifier, exp.Identifier):
        return identifier.this if identifier.quoted else identifier.this.lower()
    return str(identifier.name if hasattr(identifier, "name") else identifier).lower()


def is_temporary(target):
    """Created as temporary, or qualified with DuckDB's ``temp`` catalog or Postgres' ``pg_temp``."""
    first = target.parts[0]
    return target.temporary or (len(target.parts) > 1 and (first == "temp" or first.startswith("pg_temp")))


def schema_table(target, default_schema):
    """``t`` -> default.t; ``s.t`` -> s.t; ``db.s.t`` -> s.t (the database is the warehouse)."""
    parts = target.parts if len(target.parts) > 1 else (default_schema, *target.parts)
    return ".".join(parts[-2:])


def written_tables(text, *, default_schema, dialect="duckdb"):
    """``schema.table`` of the permanent tables the statement(s) write, sorted and unique."""
    return sorted({schema_table(t, default_schema) for t in targets(text, dialect) if not is_temporary(t)})


class TableWrites:
    """The tables written by the statements that ran, fed one successful statement at a time."""

    def __init__(self, dialect):
        self.dialect, self.default_schema = dialect, DEFAULT_SCHEMAS.get(dialect, "main")
        self.committed: set[str] = set()
        self.in_transaction: set[str] | None = None
        self.temporary: set[str] = set()  # bare names of the temporary tables created

    def ran(self, text):
        control = transaction_control(text)
        if control == "begin":
            self.in_transaction = self.in_transaction or set()
        elif control == "commit":
            self.committed |= self.in_transaction or set()
            self.in_transaction = None
        elif control == "rollback":
            self.in_transaction = None
        else:
            for target in targets(text, self.dialect):
                self._wrote(target)

    def _wrote(self, target):
        if target.temporary:
            self.temporary.add(target.parts[-1])
        elif not (is_temporary(target) or (len(target.parts) == 1 and target.parts[0] in self.temporary)):
            name = schema_table(target, self.default_schema)
            (self.committed if self.in_transaction is None else self.in_transaction).add(name)

    def tables(self, warehouse_id):
        return sorted(f"{warehouse_id}.{name}" for name in self.committed)


def tables_written(statements, *, warehouse_id, dialect):
    """`<warehouse>.<schema>.<table>` of what the statements that ran (in order) wrote."""
    writes = TableWrites(dialect)
    for text in statements:
        writes.ran(text)
    return writes.tables(warehouse_id)
