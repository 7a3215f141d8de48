"""The tables SQL statements write, read with sqlglot in the warehouse's dialect (DuckDB,
Postgres): what table-update triggers watch, and what lineage will record.

A sql_task's process reports the statements that ran, in order (runs/executors/sql.py); the
worker turns them into `<warehouse>.<schema>.<table>` names here (``tables_written``):

- written are the targets of INSERT, CREATE TABLE (AS), SELECT ... INTO, UPDATE, DELETE, MERGE,
  COPY ... FROM, TRUNCATE and ALTER TABLE (a rename: both names), the data-modifying CTEs of
  Postgres included; not views, indexes, reads, DROPs or temporary tables (created as such, or
  qualified with DuckDB's ``temp`` catalog or Postgres' ``pg_temp``);
- unquoted names are folded to lower case, quoted ones keep theirs, as both databases do; a
  three-part name's first part is the database (the warehouse) and is left out;
- writes inside ``BEGIN`` ... ``COMMIT`` count once committed (a ``ROLLBACK``, a failure, or the
  end of the task inside the transaction drop them; ``ROLLBACK TO SAVEPOINT`` keeps them: better a
  trigger too many than one missed); writes to a temporary table created earlier in the task
  (named without a schema) are left out.

A statement sqlglot cannot read (a syntax it does not know, nesting past its recursion limit, or
past MAX_PARSED_CHARS, which keeps a worker from parsing for long after its task ended) is read
by its first words instead (``INSERT INTO x``, ``UPDATE x``, ...): a missed write would be a
trigger that never fires, a guessed one at worst a run too many.
"""

import logging
import re
from dataclasses import dataclass

# sqlglot (about 15 MB) is imported by the functions that parse, not with this module: only a
# worker that finished a sql_task needs it (issue 20: an idle server's memory).

log = logging.getLogger(__name__)

DEFAULT_SCHEMAS = {"duckdb": "main", "postgres": "public"}
MAX_PARSED_CHARS = 256 * 1024
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
WRITE_BY_WORDS = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?|MERGE\s+INTO|"
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?TABLE(?:\s+IF\s+NOT\s+EXISTS)?|COPY|"
    r"TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?|ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?)\s+"
    rf"({_NAME}(?:\s*\.\s*{_NAME}){{0,2}})", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    parts: tuple  # the name as written, quotes removed, unquoted parts lower-cased
    temporary: bool = False


def transaction_control(text, dialect="duckdb"):
    """"begin", "commit", "rollback" (not to a savepoint) or None for one statement's text."""
    words = _words(text, dialect)
    first = words[0] if words else ""
    if first in ("BEGIN", "START"):
        return "begin"
    if first in ("COMMIT", "END"):
        return "commit"
    if first in ("ROLLBACK", "ABORT") and "TO" not in words[1:3]:
        return "rollback"
    return None


def _words(text, dialect):
    """The statement's words in upper case, comments left out."""
    import sqlglot

    try:
        return [token.text.upper() for token in sqlglot.tokenize(text, read=dialect)]
    except Exception:  # an unterminated quote, say: the words before it are enough here
        return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL).upper().replace(";", " ").split()


def targets(text, dialect):
    """The tables one statement's text writes (it may hold several statements)."""
    if len(text) > MAX_PARSED_CHARS:
        return _targets_by_words(text, dialect, "it is too long to parse")
    import sqlglot
    from sqlglot import exp

    try:
        statements = sqlglot.parse(text, dialect=dialect)
    except Exception as exc:  # SqlglotError, and RecursionError on deep nesting
        return _targets_by_words(text, dialect, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    found = []
    for statement in filter(None, statements):
        if isinstance(statement, exp.Command):  # sqlglot's "a syntax I do not know"
            found += _targets_by_words(statement.sql(dialect=dialect), dialect, f"{statement.name} is not parsed")
        else:
            found += _targets_of(statement)
    return found


def _targets_by_words(text, dialect, why):
    match = WRITE_BY_WORDS.match(re.sub(r"^(?:\s*(?:--[^\n]*\n|/\*.*?\*/))*", "", text, flags=re.DOTALL))
    log.info("SQL not parsed (%s) in the %s dialect: read by its first words", why, dialect)
    if match is None:
        return []
    parts = re.findall(_NAME, match.group(1))
    return [Target(tuple(part[1:-1].replace('""', '"') if part.startswith('"') else part.lower() for part in parts))]


def _targets_of(statement):
    from sqlglot import exp

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
    elif isinstance(statement, exp.Alter) and str(statement.args.get("kind") or "").upper() == "TABLE":
        found += _table_targets(statement.this)
        for rename in (a for a in statement.args.get("actions") or [] if isinstance(a, exp.AlterRename)):
            for new in _table_targets(rename.this):  # unqualified: in the renamed table's schema
                found.append(Target(found[-1].parts[:-1] + new.parts if len(new.parts) == 1 and found else new.parts))
    into = statement.args.get("into") if isinstance(statement, exp.Select) else None
    if isinstance(into, exp.Into):  # Postgres' SELECT ... INTO new_table
        found += _table_targets(into.this, temporary=bool(into.args.get("temporary")))
    # INSERT, UPDATE, DELETE, MERGE: the statement's own, and those of data-modifying CTEs.
    for node in statement.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge):
        found += _table_targets(node.this)
    return found


def _table_targets(node, temporary=False):
    from sqlglot import exp

    if isinstance(node, exp.Schema):  # a table with a column list: t (a, b)
        node = node.this
    if not isinstance(node, exp.Table) or not node.name:
        return []
    parts = tuple(_name(part) for part in (node.args.get("catalog"), node.args.get("db"), node.this) if part)
    return [Target(parts, temporary)]


def _name(identifier):
    from sqlglot import exp

    if isinstance(identifier, exp.Identifier):
        return identifier.this if identifier.quoted else identifier.this.lower()
    return str(identifier.name if hasattr(identifier, "name") else identifier).lower()


def is_temporary(target, dialect="duckdb"):
    """Created as temporary, or qualified with ``pg_temp`` (Postgres reserves ``pg_`` names) or,
    in DuckDB, its ``temp`` catalog (in Postgres, ``temp`` is an ordinary schema)."""
    first = target.parts[0]
    qualified = len(target.parts) > 1
    return target.temporary or (qualified and (first.startswith("pg_temp") or (first == "temp" and dialect != "postgres")))


def schema_table(target, default_schema):
    """``t`` -> default.t; ``s.t`` -> s.t; ``db.s.t`` -> s.t (the database is the warehouse)."""
    parts = target.parts if len(target.parts) > 1 else (default_schema, *target.parts)
    return ".".join(parts[-2:])


def written_tables(text, *, default_schema, dialect="duckdb"):
    """``schema.table`` of the permanent tables the statement(s) write, sorted and unique."""
    return sorted({schema_table(t, default_schema) for t in targets(text, dialect) if not is_temporary(t, dialect)})


class TableWrites:
    """The tables written by the statements that ran, fed one successful statement at a time."""

    def __init__(self, dialect):
        self.dialect, self.default_schema = dialect, DEFAULT_SCHEMAS.get(dialect, "main")
        self.committed: set[str] = set()
        self.in_transaction: set[str] | None = None
        self.temporary: set[str] = set()  # bare names of the temporary tables created

    def ran(self, text):
        control = transaction_control(text, self.dialect)
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
            self._dropped(text)

    def _dropped(self, text):
        """A dropped temporary table: a table created later under its name is a real one again."""
        if self.temporary and _words(text, self.dialect)[:2] == ["DROP", "TABLE"]:
            import sqlglot
            from sqlglot import exp

            try:
                statement = sqlglot.parse_one(text, dialect=self.dialect)
            except Exception:
                return
            for table in statement.find_all(exp.Table):
                if not table.args.get("db"):
                    self.temporary.discard(_name(table.this))

    def _wrote(self, target):
        if target.temporary:
            self.temporary.add(target.parts[-1])
        elif not (is_temporary(target, self.dialect) or (len(target.parts) == 1 and target.parts[0] in self.temporary)):
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
