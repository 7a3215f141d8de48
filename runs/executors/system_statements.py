"""Which SQL may run over the system tables, and what it becomes (pure: sqlglot, no Django).

A query of the system tables runs on a DuckDB connection that also has our whole database
attached (system_views.connect). The views filter what an identity may see; this module makes
sure a query reads nothing but the views:

- exactly one statement, a query (SELECT, WITH, UNION, ...; no SELECT ... INTO);
- every table it names is one of the system tables (``system.lakeflow.jobs`` or
  ``lakeflow.jobs``) or one of its own CTEs; no table function but UNNEST and RANGE
  (``sqlite_scan``, ``postgres_query``, ``query_table``, ``read_csv`` ... are refused here:
  the scanners' functions are not bound by DuckDB's enable_external_access);
- ``system.<schema>.<table>`` is rewritten to ``<schema>.<table>``, where the views live
  (DuckDB reserves the catalog name ``system``), and ``now()``/``current_timestamp`` to the UTC
  TIMESTAMP the views' times are in, so that ``period_start_time >= now() - INTERVAL 7 DAYS``
  compares without converting a million rows.

The text that runs is generated from sqlglot's tree, so what was checked is what runs; DuckDB's
own parser then confirms it is one SELECT (``confirm``).
"""

import re

from .system_views import TABLES, view_name

MAX_QUERY_CHARACTERS = 100_000

# Table functions a query may use in FROM: they make rows from values, they read nothing.
_ROW_MAKERS = ("Unnest", "GenerateSeries", "ExplodingGenerateSeries")
# Scalar functions that touch the catalog, files or settings (DuckDB's own or the scanners').
_REFUSED_FUNCTIONS = re.compile(
    r"^(read_|sqlite_|postgres_|pg_|query$|query_table$|glob$|parquet_|duckdb_|pragma_|getenv$|"
    r"current_setting$|getvariable$|which_secret$|icu_|load_|install_|json_execute_serialized_sql$|"
    r"json_serialize_sql$|json_deserialize_sql$|nextval$|currval$|make_.*_from_file)", re.IGNORECASE)
_NOW_FUNCTIONS = ("now", "get_current_timestamp", "transaction_timestamp", "current_timestamp")


class Refused(ValueError):
    """The query may not run; the message says why (shown to the user as it is)."""


def known_tables() -> str:
    return ", ".join(TABLES)


def checked(sql: str) -> str:
    """The DuckDB SQL to run for ``sql``, a query of the system tables; Refused otherwise."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    if len(sql) > MAX_QUERY_CHARACTERS:
        raise Refused(f"The query is longer than {MAX_QUERY_CHARACTERS:,} characters")
    try:
        statements = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree is not None]
    except (ParseError, TokenError) as exc:
        raise Refused(f"Cannot read the query: {_first_line(exc)}") from None
    except RecursionError:
        raise Refused("The query is nested too deeply") from None
    if not statements:
        raise Refused("There is no query to run")
    if len(statements) > 1:
        raise Refused("Run one query at a time (the text holds several statements)")
    tree = statements[0]
    if not isinstance(tree, exp.Query) or tree.args.get("into") is not None:
        raise Refused(f"Only queries (SELECT) of the system tables may run here, not {_kind(tree)}: "
                      f"the system tables are read-only")
    for node in tree.walk():
        _check(node, exp)
    for table in list(tree.find_all(exp.Table)):
        _rewrite_table(table, exp)
    for column in tree.find_all(exp.Column):
        if column.args.get("catalog") is not None and column.catalog.lower() == "system":
            column.set("catalog", None)
    for now in [node for node in tree.find_all(exp.CurrentTimestamp, exp.Anonymous)
                if isinstance(node, exp.CurrentTimestamp) or node.name.lower() in _NOW_FUNCTIONS]:
        now.replace(exp.Cast(this=exp.CurrentTimestamp(), to=exp.DataType.build("TIMESTAMP")))
    return tree.sql(dialect="duckdb")


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _kind(tree) -> str:
    return f"a {type(tree).__name__.upper()} statement"


def _check(node, exp):
    if isinstance(node, (exp.Command, exp.DDL, exp.DML, exp.Into, exp.Set, exp.Pragma, exp.Use)):
        raise Refused(f"Only queries (SELECT) of the system tables may run here, not {_kind(node)}")
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        if _REFUSED_FUNCTIONS.match(name or ""):
            raise Refused(f"The function {name.lower()} is not available in queries of the system tables")


def _rewrite_table(table, exp):
    """A system table becomes its view; a CTE in scope stays; anything else is refused."""
    source = table.this
    if not isinstance(source, exp.Identifier):
        if type(source).__name__ in _ROW_MAKERS:
            return
        name = source.name if isinstance(source, exp.Anonymous) else type(source).__name__
        raise Refused(f"Table functions such as {str(name).lower()}() are not available in queries of the "
                      f"system tables: read {known_tables()}")
    parts = [part.lower() for part in (table.catalog, table.db, table.name) if part]
    if len(parts) == 1 and _names_a_cte(table, parts[0], exp):
        return
    name = ".".join(parts)
    full = name if parts[0] == "system" else f"system.{name}"
    if full not in TABLES:
        raise Refused(f"Table {name} is not a system table; the system tables are: {known_tables()}")
    schema, view = view_name(full).split(".")
    table.set("catalog", None)
    table.set("db", exp.to_identifier(schema))
    table.set("this", exp.to_identifier(view))


def _names_a_cte(table, name, exp) -> bool:
    """Whether DuckDB reads ``name`` at ``table`` as a CTE. A name no CTE in scope defines is
    looked up in the catalog, where DuckDB's own views (duckdb_databases holds the attached
    database's connection string) answer unqualified names: so only CTEs whose scope holds the
    table count. A CTE sees the ones before it in its WITH, and itself only from the recursive
    side of a WITH RECURSIVE's UNION (its anchor's reference is the catalog's)."""
    child, node = table, table.parent
    while node is not None:
        if isinstance(node, exp.With):
            position = next(i for i, cte in enumerate(node.expressions) if cte is child)
            if any(cte.alias_or_name.lower() == name for cte in node.expressions[:position]):
                return True
            if (node.args.get("recursive") and child.alias_or_name.lower() == name
                    and isinstance(child.this, exp.Union) and _inside(table, child.this.expression)):
                return True
        elif isinstance(node, exp.Query) and not isinstance(child, exp.With):
            if any(cte.alias_or_name.lower() == name for cte in node.ctes):
                return True
        child, node = node, node.parent
    return False


def _inside(node, ancestor) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def confirm(connection, sql: str) -> None:
    """DuckDB's own parser agrees: ``sql`` is one SELECT statement."""
    import duckdb

    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as exc:
        raise Refused(f"Cannot read the query: {_first_line(exc)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise Refused("Only queries (SELECT) of the system tables may run here")
