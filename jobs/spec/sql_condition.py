"""Check a trigger's `sql_condition` gate (reference §1.4-1.5).

Pure: whether the warehouse exists is a database question, asked when the job is saved
(warehouses/condition_checks.py).

Decisions:
- There are no saved queries on this server: our field `query` carries the SQL text. A block with
  `sql_query_id` alone is refused with a message saying to give `query`; with both, `query` is
  what runs and `sql_query_id` is kept as given (a label: a Databricks configuration can be
  copied here by adding `query`).
- `query` is one read statement (SELECT, WITH ... SELECT, VALUES, FROM t, TABLE t), read with
  sqlglot in the DuckDB dialect, then Postgres'. Writes anywhere in it (a data-modifying CTE,
  SELECT ... INTO) are refused. Text sqlglot cannot read in either dialect is judged by its first
  word, and by sqlparse for the count of statements: refusing a query the warehouse would run is
  worse than letting the evaluator find out, which runs it on a read-only connection anyway.
- `trigger_mode`: unset means QUERY_RETURNS_ROWS (the SDK's docstring); an explicit
  SQL_CONDITION_TRIGGER_MODE_UNSPECIFIED is refused, as Databricks' validator does.
"""

from __future__ import annotations

import functools

import sqlparse

from jobs.spec.checker import Checker

TRIGGER_MODES = ("QUERY_RETURNS_ROWS", "RESULT_VALUE_CHANGES")
UNSPECIFIED_MODE = "SQL_CONDITION_TRIGGER_MODE_UNSPECIFIED"
DEFAULT_MODE = "QUERY_RETURNS_ROWS"
MAX_QUERY_CHARS = 64 * 1024  # a condition is a short query; this also bounds the parse
DIALECTS = ("duckdb", "postgres")
READ_WORDS = ("SELECT", "WITH", "VALUES", "FROM", "TABLE")


@functools.cache
def _writes():
    """Nodes that change something, wherever they sit in the statement's tree."""
    # sqlglot (about 15 MB) is imported on the first query checked, not by every process that
    # imports the job spec (issue 20: an idle server's memory).
    from sqlglot import exp

    return (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
            exp.Copy, exp.Command, exp.TruncateTable, exp.Attach, exp.Detach, exp.Set, exp.Pragma)


def check_sql_condition(c: Checker, block, path: str) -> None:
    """Add to `c` every problem of the sql_condition block `block` found at field path `path`
    (e.g. "trigger.sql_condition", "triggers[1].sql_condition", "schedule.sql_condition")."""
    if not isinstance(block, dict):
        c.add(path, "must be an object with warehouse_id, query and trigger_mode")
        return
    c.string(block, path, "warehouse_id", required=True, non_empty=True)
    c.string(block, path, "sql_query_id")
    if "query" not in block and block.get("sql_query_id") is not None:
        c.add(f"{path}.query", "saved queries (sql_query_id) are not supported by this server: give the "
                               "condition's SQL text as query (e.g. \"SELECT 1 FROM t WHERE ...\")")
    else:
        query = c.string(block, path, "query", required=True, non_empty=True)
        if query is not None:
            problem = query_problem(query)
            if problem:
                c.add(f"{path}.query", problem)
    if block.get("trigger_mode") == UNSPECIFIED_MODE:
        c.add(f"{path}.trigger_mode", f"{UNSPECIFIED_MODE} is not a trigger mode: use "
                                      f"{' or '.join(TRIGGER_MODES)} (leave it out for {DEFAULT_MODE})")
    else:
        c.choice(block, path, "trigger_mode", TRIGGER_MODES)


def trigger_mode(config: dict) -> str:
    """The mode a valid block runs in: unset is QUERY_RETURNS_ROWS."""
    return config.get("trigger_mode") or DEFAULT_MODE


def query_problem(text: str) -> str | None:
    """Why `text` cannot be a condition's query (one statement that only reads), or None."""
    if len(text) > MAX_QUERY_CHARS:
        return f"must be at most {MAX_QUERY_CHARS:,} characters; this one has {len(text):,}"
    from sqlglot import exp

    statements = _parsed(text)
    if statements is None:
        return _problem_by_words(text)
    if len(statements) != 1:
        return f"must be one statement; this has {len(statements)}"
    statement = statements[0]
    if not isinstance(statement, (exp.Query, exp.Values)):
        return f"must be a query that reads (SELECT, WITH ... SELECT, VALUES), not {_kind(statement)}"
    write = next((node for node in statement.walk() if isinstance(node, _writes())), None)
    if write is not None:
        return f"must only read: it contains {_kind(write)}"
    if any(isinstance(node, exp.Select) and node.args.get("into") for node in statement.walk()):
        return "must only read: SELECT ... INTO creates a table"
    return None


def _parsed(text: str):
    """The statements of `text` in the first dialect sqlglot reads it in, or None."""
    import sqlglot

    for dialect in DIALECTS:
        try:
            return [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        except Exception:  # ParseError, TokenError; RecursionError on deep nesting
            continue
    return None


def _problem_by_words(text: str) -> str | None:
    statements = [s for s in sqlparse.split(text) if sqlparse.format(s, strip_comments=True).strip(" \n\t;")]
    if len(statements) != 1:
        return f"must be one statement; this has {len(statements)}"
    words = sqlparse.format(statements[0], strip_comments=True).split()
    first = words[0].upper() if words else ""
    if first.lstrip("(") not in READ_WORDS:
        return f"must be a query that reads (SELECT, WITH ... SELECT, VALUES), not {first or 'empty'}"
    return None


def _kind(node) -> str:
    """A statement's kind in its own words: "INSERT", "CREATE TABLE", "EXPLAIN"."""
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return str(node.this).upper()
    kind = node.args.get("kind") if isinstance(node, (exp.Create, exp.Drop, exp.Alter)) else None
    try:
        first = node.sql().split()[0].upper()
    except Exception:  # a node sqlglot cannot write back: its class names it well enough
        first = node.key.upper()
    return f"{first} {kind}" if isinstance(kind, str) else first
