"""The tables and columns a sql_task's statements read and wrote, read with sqlglot in the
warehouse's dialect (DuckDB, Postgres): the lineage recorded for one task attempt.

Built on runs/sql_tables.py, which finds what the statements write; here (``attempt_lineage``):

- writes are sql_tables' (its transaction, temporary table and naming rules), plus the views
  created: for triggers a view is not a write, for lineage it is a dataset like a table;
- reads are the tables named in FROM, JOIN, subqueries, USING, MERGE ... USING, UPDATE ... FROM,
  the query of INSERT, CREATE TABLE AS and CREATE VIEW, and ``COPY t TO``; not the target of the
  statement (``INSERT INTO t SELECT ... FROM t`` does read t: the FROM names it), not the names a
  WITH defines, where visible (a CTE's own body sees only the CTEs before it, unless RECURSIVE:
  ``WITH t AS (SELECT * FROM t)`` reads the table t), not table functions (``read_csv(...)``,
  ``generate_series``) nor DuckDB's ``FROM 'file.csv'``, and not temporary tables (those created
  earlier in the attempt, named without a schema, and those qualified with ``temp``/``pg_temp``);
- a read counts even if its transaction was rolled back: the data was read all the same;
- columns map each column of a table written by CREATE TABLE AS, CREATE VIEW or INSERT ... SELECT
  to the source columns it is computed from (``a + b AS c``: both), by sqlglot's lineage. By
  position when the target's columns are known (a column list, or the warehouse schema of an
  INSERT's target), else (and for DuckDB's INSERT ... BY NAME) by the names of the query's
  columns; ``SELECT *`` needs the schema; sources that are temporary tables are left out. A
  query sqlglot cannot resolve (an ambiguous column, a table missing from the schema) gets no
  column lineage, its tables still count;
- a statement sqlglot cannot read (see sql_tables) is listed in ``unknown``: its writes are
  guessed from its first words as sql_tables does, its reads are lost.
"""

import logging
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.lineage import lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope
from sqlglot.schema import MappingSchema

from runs.sql_tables import (
    MAX_PARSED_CHARS,
    TableWrites,
    Target,
    _name,
    _targets_by_words,
    _targets_of,
    is_temporary,
    schema_table,
    transaction_control,
)

log = logging.getLogger(__name__)

# Where the query's table nodes carry the name they read, for the column lineage to find.
READ_NAME = "lineage_read"
_UNNAMED_COLUMN = re.compile(r"_col_\d+$")  # qualify's name for an expression without an alias


@dataclass(frozen=True)
class TableLineage:
    """What one task attempt's statements did in one warehouse; tables are named
    ``<warehouse>.<schema>.<table>``."""

    reads: tuple[str, ...]  # sorted, each once
    writes: tuple[str, ...]  # committed ones, sorted, each once
    columns: tuple[tuple[str, str, str, str], ...]  # (target table, target column, source table, source column)
    row_counts: dict  # table written -> the rows the statements that wrote it reported, summed
    unknown: tuple[str, ...]  # "statement <n>: lineage unknown: <why>", one per statement not parsed


def statement_reads(text, dialect):
    """The tables one statement's text reads, in order, each once (temporary ones included: see
    ``is_temporary``); none if sqlglot cannot read it."""
    statements, _ = _parse(text, dialect)
    return list(dict.fromkeys(_as_target(t) for statement in statements for t in _read_tables(statement, text)))


def attempt_lineage(statements, *, warehouse_id, dialect, schema=None, row_counts=None):
    """What the statements that ran (in order) read and wrote, qualified with the warehouse.

    ``schema``: {"schema.table": {"column": "TYPE"}} of the warehouse, for ``SELECT *`` and
    INSERTs without a column list; ``row_counts``: the rows each statement reported, or None."""
    attempt = _Attempt(warehouse_id, dialect, schema or {})
    row_counts = list(row_counts or [])
    for number, text in enumerate(statements, 1):
        attempt.add(number, text, row_counts[number - 1] if number <= len(row_counts) else None)
    return attempt.result()


class _Attempt(TableWrites):
    """sql_tables' writes, fed statements read once here, and what lineage adds to them."""

    def __init__(self, warehouse_id, dialect, schema):
        super().__init__(dialect)
        self.warehouse_id = warehouse_id
        # Unquoted names fold to lower case, quoted ones keep theirs (DuckDB's default folds both).
        self.sql_dialect = Dialect.get_or_raise(f"{dialect}, normalization_strategy = lowercase")
        nested = {}
        for key, columns in schema.items():
            schema_name, _, table = key.partition(".")
            nested.setdefault(schema_name, {})[table] = columns
        try:
            self.schema = MappingSchema(nested, dialect=self.sql_dialect, normalize=False)
        except Exception as exc:  # a malformed schema costs SELECT * its columns, nothing else
            log.info("warehouse schema not used: %s", exc)
            self.schema = MappingSchema(dialect=self.sql_dialect)
        self.table_columns = {key: list(columns) for key, columns in schema.items()}
        self.reads: set[str] = set()
        self.unknown: list[str] = []
        # Column lineage and row counts follow the writes: kept once committed.
        self.done: list[tuple] = []
        self.open: list[tuple] | None = None

    def add(self, number, text, rows):
        """One statement that ran; ``rows``: the rows it reported, or None."""
        control = transaction_control(text, self.dialect)
        if control:  # sql_tables' transaction rules, for the columns and row counts too
            self.ran(text)
            if control == "commit":
                self.done += self.open or []
            self.open = (self.open or []) if control == "begin" else None
            return
        statements, why = _parse(text, self.dialect)
        if why:
            self.unknown.append(f"statement {number}: lineage unknown: {why}")
        for statement in statements:
            # Temporary tables are those created before this statement: CREATE TEMP TABLE x AS
            # SELECT * FROM x reads the real x.
            self.reads |= {self._full_name(t) for t in map(_as_target, _read_tables(statement, text))
                           if self._permanent(t)}
        found = (_targets_by_words(text, self.dialect, why) if why
                 else [target for s in statements for target in _targets_of(s) + _view_targets(s)])
        for target in found:
            self._wrote(target)
        self._dropped(text)
        effects = [("column", c) for s in statements for c in self._columns(s)]
        first = next((t for t in found if self._permanent(t)), None)
        if first is not None and isinstance(rows, int) and rows >= 0 and first not in _views(statements):
            effects.append(("rows", (self._full_name(first), rows)))
        (self.done if self.open is None else self.open).extend(effects)

    def _permanent(self, target):
        return not (is_temporary(target, self.dialect)
                    or (len(target.parts) == 1 and target.parts[0] in self.temporary))

    def _full_name(self, target):
        return f"{self.warehouse_id}.{schema_table(target, self.default_schema)}"

    def _columns(self, statement):
        """(target table, target column, source table, source column) of a statement that fills a
        table from a query; none where sqlglot cannot tell."""
        if isinstance(statement, exp.Insert):
            target, query = statement.this, statement.expression
            by_name = bool(statement.args.get("by_name"))
        elif isinstance(statement, exp.Create) and _kind(statement) in ("TABLE", "VIEW"):
            target, query, by_name = statement.this, statement.expression, False
        else:
            return []
        while isinstance(query, exp.Subquery):
            query = query.this
        table = _as_target(target.this if isinstance(target, exp.Schema) else target)
        if not isinstance(query, exp.Query) or table.temporary or not self._permanent(table):
            return []
        listed = [_name(c.this if isinstance(c, exp.ColumnDef) else c)
                  for c in target.expressions] if isinstance(target, exp.Schema) else []
        if not listed and isinstance(statement, exp.Insert) and not by_name:
            listed = self.table_columns.get(schema_table(table, self.default_schema), [])
        if isinstance(statement, exp.Insert) and statement.args.get("with_"):
            query.set("with_", statement.args["with_"])  # WITH ... INSERT: the query's CTEs
        try:
            query = qualify(query, dialect=self.sql_dialect, schema=self.schema, db=self.default_schema,
                            validate_qualify_columns=False, identify=False)
            sources = lineage(None, query, self.schema, dialect=self.sql_dialect, scope=build_scope(query),
                              copy=False, trim_selects=False)
            names = [select.alias_or_name for select in query.selects]
            if listed and (len(listed) != len(names) or any(select.is_star for select in query.selects)):
                return []  # a * the schema did not expand, or a stale schema: which column goes where is unknown
            pairs = zip(listed, names) if listed else (
                (n, n) for n, select in zip(names, query.selects) if not (select.is_star or _UNNAMED_COLUMN.match(n)))
            found = set()
            for target_column, name in pairs:
                for leaf in sources[name].walk():
                    source_table = leaf.expression.meta.get(READ_NAME) if not leaf.downstream else None
                    column = exp.to_column(leaf.name, dialect=self.sql_dialect) if source_table else None
                    if column is not None and not column.is_star:
                        found.add((target_column, source_table, column.name))
        except Exception as exc:  # OptimizeError, SqlglotError, RecursionError...: the tables still count
            log.info("column lineage unknown: %s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0])
            return []
        target_name = self._full_name(table)
        return [(target_name, column, self._full_name(source), source_column)
                for column, source, source_column in found if self._permanent(source)]

    def result(self):
        columns, row_counts = set(), {}
        for kind, effect in self.done:
            if kind == "column":
                columns.add(effect)
            else:
                row_counts[effect[0]] = row_counts.get(effect[0], 0) + effect[1]
        return TableLineage(reads=tuple(sorted(self.reads)), writes=tuple(self.tables(self.warehouse_id)),
                            columns=tuple(sorted(columns)), row_counts=row_counts, unknown=tuple(self.unknown))


def _parse(text, dialect):
    """The statements sqlglot reads in ``text``, and why it could not (None if it could)."""
    if len(text) > MAX_PARSED_CHARS:
        return [], "it is too long to parse"
    try:
        statements = [s for s in sqlglot.parse(text, dialect=dialect) if s is not None]
    except Exception as exc:  # SqlglotError, and RecursionError on deep nesting
        return [], str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    command = next((s for s in statements if isinstance(s, exp.Command)), None)
    if command is not None:  # sqlglot's "a syntax I do not know"
        return [], f"{command.name} is not parsed"
    return statements, None


def _read_tables(statement, text):
    """The table nodes a parsed statement reads; each also carries its name in its meta, for the
    column lineage."""
    if isinstance(statement, exp.Create):
        root = statement.expression if isinstance(statement.expression, exp.Query) else None
    elif isinstance(statement, (exp.Query, exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy)):
        root = statement
    else:  # DROP, ALTER, TRUNCATE, SET...: they name tables without reading them
        root = None
    if root is None:
        return []
    targets = [node.this for node in root.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Into)]
    if isinstance(statement, exp.Copy) and statement.args.get("kind"):  # COPY ... FROM
        targets.append(statement.this)
    written = {id(t.this if isinstance(t, exp.Schema) else t) for t in targets}
    found = []
    for table in root.find_all(exp.Table):
        if (id(table) not in written and isinstance(table.this, exp.Identifier)
                and not _is_file(table, text) and not _names_a_cte(table)):
            table.meta[READ_NAME] = _as_target(table)
            found.append(table)
    return found


def _is_file(table, text):
    """DuckDB's ``FROM 'data.csv'``: sqlglot makes the string a quoted table name."""
    start = table.this.meta.get("start")
    return not table.args.get("db") and start is not None and text[start:start + 1] == "'"


def _names_a_cte(table):
    """Whether a one-part name is that of a CTE visible where it is used."""
    if table.args.get("db"):
        return False
    name, node = _name(table.this), table
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.With):  # node is one of its CTEs: it sees those before it
            index = next(i for i, cte in enumerate(parent.expressions) if cte is node)
            visible = parent.expressions if parent.args.get("recursive") else parent.expressions[:index]
        elif isinstance(parent.args.get("with_"), exp.With) and parent.args["with_"] is not node:
            visible = parent.args["with_"].expressions  # the query's body sees them all
        else:
            visible = []
        if any(_name(cte.args["alias"].this) == name for cte in visible):
            return True
        node = parent
    return False


def _view_targets(statement):
    if isinstance(statement, exp.Create) and _kind(statement) == "VIEW":
        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        return [_as_target(target, temporary=statement.find(exp.TemporaryProperty) is not None)]
    return []


def _views(statements):
    return [t for s in statements for t in _view_targets(s)]


def _kind(create):
    return str(create.args.get("kind") or "").upper()


def _as_target(table, temporary=False):
    parts = tuple(_name(part) for part in (table.args.get("catalog"), table.args.get("db"), table.this) if part)
    return Target(parts, temporary)
