"""Table and column lineage of a sql_task's statements (lineage/sql.py): pure, no database.

``python -m tests.lineage.test_sql_lineage`` prints the median time per statement."""

import statistics
import time

import pytest

from lineage.sql import TableLineage, attempt_lineage, statement_reads
from runs.sql_tables import Target, tables_written


def lineage_of(*statements, dialect="duckdb", **kwargs):
    return attempt_lineage(list(statements), warehouse_id="wh", dialect=dialect, **kwargs)


# --- tables read and written ---------------------------------------------------------------------

@pytest.mark.parametrize("dialect, statements, reads, writes", [
    ("duckdb", ["SELECT * FROM orders"], ["main.orders"], []),
    # CTEs are not tables; where a CTE is named like a table, its own body still reads the table.
    ("duckdb", ["WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN customers USING (id)"],
     ["main.customers", "main.orders"], []),
    ("duckdb", ["WITH orders AS (SELECT * FROM orders WHERE NOT cancelled) SELECT * FROM orders"],
     ["main.orders"], []),
    ("duckdb", ["WITH orders AS (SELECT * FROM raw.orders) SELECT * FROM orders"], ["raw.orders"], []),
    ("duckdb", ["WITH orders AS (SELECT 1 AS id) SELECT * FROM orders JOIN main.orders USING (id)"],
     ["main.orders"], []),
    ("duckdb", ["WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b"], ["main.b"], []),
    ("postgres", ["WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r"],
     [], []),
    ("duckdb", ['WITH "Recent" AS (SELECT * FROM orders) SELECT * FROM "Recent", recent'],
     ["main.orders", "main.recent"], []),
    # Joins, subqueries, set operations.
    ("duckdb", ["SELECT * FROM a JOIN s.b ON a.id = b.id LEFT JOIN c USING (id), d"],
     ["main.a", "main.c", "main.d", "s.b"], []),
    ("duckdb", ["SELECT * FROM (SELECT * FROM a) AS x WHERE id IN (SELECT id FROM b) "
                "AND EXISTS (SELECT 1 FROM c WHERE c.id = x.id)"], ["main.a", "main.b", "main.c"], []),
    ("duckdb", ["SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id) AS l"], ["main.t", "main.u"], []),
    ("postgres", ["SELECT id FROM a UNION ALL SELECT id FROM b EXCEPT SELECT id FROM c"],
     ["public.a", "public.b", "public.c"], []),
    # DML: the target is written, what the statement looks up is read.
    ("postgres", ["MERGE INTO target AS t USING source AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = s.x "
                  "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.x)"], ["public.source"], ["public.target"]),
    ("duckdb", ["MERGE INTO target USING (SELECT * FROM a JOIN b USING (id)) AS s ON target.id = s.id "
                "WHEN MATCHED THEN DELETE"], ["main.a", "main.b"], ["main.target"]),
    ("postgres", ["UPDATE t SET x = s.x FROM s WHERE s.id = t.id"], ["public.s"], ["public.t"]),
    ("duckdb", ["UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t)"], ["main.t"], ["main.t"]),
    ("duckdb", ["DELETE FROM t USING other WHERE t.id = other.id"], ["main.other"], ["main.t"]),
    ("duckdb", ["INSERT INTO t VALUES (1, 2)"], [], ["main.t"]),
    ("duckdb", ["INSERT INTO t SELECT * FROM t JOIN u USING (id)"], ["main.t", "main.u"], ["main.t"]),
    ("postgres", ["WITH moved AS (DELETE FROM inbox WHERE done RETURNING *) INSERT INTO archive SELECT * FROM moved"],
     [], ["public.archive", "public.inbox"]),
    ("postgres", ["SELECT * INTO archive FROM orders"], ["public.orders"], ["public.archive"]),
    # COPY FROM loads its table, COPY TO reads it.
    ("duckdb", ["COPY t FROM 'in.csv' (HEADER)"], [], ["main.t"]),
    ("postgres", ["COPY s.t (a, b) FROM STDIN"], [], ["s.t"]),
    ("duckdb", ["COPY t TO 'out.csv'"], ["main.t"], []),
    ("duckdb", ["COPY (SELECT * FROM t JOIN u USING (id)) TO 'out.parquet' (FORMAT parquet)"],
     ["main.t", "main.u"], []),
    # Views are datasets here (not writes for triggers); CTAS.
    ("duckdb", ["CREATE VIEW v AS SELECT * FROM t"], ["main.t"], ["main.v"]),
    ("duckdb", ["CREATE OR REPLACE VIEW reporting.v AS SELECT * FROM t"], ["main.t"], ["reporting.v"]),
    ("postgres", ["CREATE MATERIALIZED VIEW mv AS SELECT a FROM s"], ["public.s"], ["public.mv"]),
    ("duckdb", ["CREATE TEMP VIEW v AS SELECT * FROM t", "SELECT * FROM v"], ["main.t"], []),
    ("duckdb", ["CREATE OR REPLACE TABLE t AS SELECT * FROM s"], ["main.s"], ["main.t"]),
    ("postgres", ["CREATE TABLE t AS SELECT * FROM s"], ["public.s"], ["public.t"]),
    # Quoted names keep their case, unquoted ones fold; a three-part name drops its database.
    ("duckdb", ['SELECT * FROM "Sales"."Orders" JOIN SALES.Items USING (id)'], ["Sales.Orders", "sales.items"], []),
    ("postgres", ['INSERT INTO "Out" SELECT * FROM wh.sales.orders, other_db.public.x'],
     ["public.x", "sales.orders"], ["public.Out"]),
    # Temporary tables are not datasets; named with a schema, the permanent table is meant.
    ("duckdb", ["CREATE TEMP TABLE stg AS SELECT * FROM src", "INSERT INTO t SELECT * FROM stg"],
     ["main.src"], ["main.t"]),
    ("duckdb", ["CREATE TEMP TABLE x AS SELECT * FROM x"], ["main.x"], []),
    ("duckdb", ["CREATE TEMPORARY TABLE stg (x INT)", "SELECT * FROM stg JOIN main.stg USING (x)"],
     ["main.stg"], []),
    ("duckdb", ["SELECT * FROM temp.stg, temp.main.stg2"], [], []),
    ("postgres", ["INSERT INTO t SELECT * FROM pg_temp.scratch"], [], ["public.t"]),
    ("postgres", ["SELECT * FROM temp.t"], ["temp.t"], []),  # in Postgres, temp is an ordinary schema
    # Table functions and files are not tables.
    ("duckdb", ["SELECT * FROM read_csv('x.csv') JOIN 'y.parquet' USING (id) JOIN t USING (id)"], ["main.t"], []),
    ("postgres", ["INSERT INTO t SELECT * FROM generate_series(1, 3)"], [], ["public.t"]),
    # Each dialect's own syntax.
    ("postgres", ["INSERT INTO t (id, x) SELECT id, x FROM s ON CONFLICT (id) DO UPDATE SET x = excluded.x"],
     ["public.s"], ["public.t"]),
    ("duckdb", ["INSERT OR REPLACE INTO t SELECT * FROM s"], ["main.s"], ["main.t"]),
    ("duckdb", ["INSERT INTO t BY NAME SELECT * FROM s"], ["main.s"], ["main.t"]),
    # Statements that name tables without reading them.
    ("duckdb", ["DROP TABLE t", "ALTER TABLE u ADD COLUMN y INT", "CREATE INDEX i ON v (x)", "TRUNCATE w"],
     [], ["main.u", "main.w"]),
    # A rolled-back transaction read all the same; its writes are undone.
    ("duckdb", ["BEGIN", "INSERT INTO a SELECT * FROM src", "CREATE VIEW v AS SELECT 1", "ROLLBACK",
                "INSERT INTO b SELECT * FROM src2"], ["main.src", "main.src2"], ["main.b"]),
    ("postgres", ["BEGIN", "INSERT INTO a SELECT * FROM src", "COMMIT"], ["public.src"], ["public.a"]),
    # Not parsed: no reads, the write found by the statement's first words.
    ("duckdb", ["INSERT INTO t SELECT (1 FROM s"], [], ["main.t"]),
])
def test_the_tables_each_statement_reads_and_writes(dialect, statements, reads, writes):
    found = lineage_of(*statements, dialect=dialect)
    assert found.reads == tuple(f"wh.{name}" for name in reads)
    assert found.writes == tuple(f"wh.{name}" for name in writes)
    # What triggers see is a part of it: lineage only adds views.
    assert set(tables_written(statements, warehouse_id="wh", dialect=dialect)) <= set(found.writes)


def test_a_statement_not_parsed_says_why_and_its_write_is_still_found():
    found = lineage_of("SELECT * FROM a", "INSERT INTO t SELECT (1 FROM s", "VACUUM")
    assert found.unknown == ("statement 2: lineage unknown: Expecting ). Line 1, Col: 28.",
                             "statement 3: lineage unknown: VACUUM is not parsed")
    assert (found.reads, found.writes) == (("wh.main.a",), ("wh.main.t",))
    long = "INSERT INTO sales.big SELECT * FROM src UNION ALL " + " UNION ALL ".join(["SELECT 1"] * 30_000)
    found = lineage_of(long)
    assert found.unknown == ("statement 1: lineage unknown: it is too long to parse",)
    assert (found.reads, found.writes) == ((), ("wh.sales.big",))


def test_statement_reads_lists_each_table_once_in_order_temporary_ones_too():
    assert statement_reads('SELECT * FROM b JOIN "S".a USING (id) JOIN b USING (id), pg_temp.x', "postgres") == [
        Target(("b",)), Target(("S", "a")), Target(("pg_temp", "x"))]
    assert statement_reads("WITH x AS (SELECT 1) SELECT * FROM x, read_csv('f.csv')", "duckdb") == []
    assert statement_reads("INSERT INTO t SELECT (1 FROM s", "duckdb") == []


# --- columns -------------------------------------------------------------------------------------

def columns(*statements, dialect="duckdb", **kwargs):
    return set(lineage_of(*statements, dialect=dialect, **kwargs).columns)


def test_ctas_maps_aliases_and_expressions_to_every_source_column():
    assert columns("CREATE TABLE t AS SELECT s.a AS x, a + b AS c, 1 AS one, count(*) OVER () AS n FROM s") == {
        ("wh.main.t", "x", "wh.main.s", "a"), ("wh.main.t", "c", "wh.main.s", "a"),
        ("wh.main.t", "c", "wh.main.s", "b")}


def test_insert_maps_by_position_to_its_column_list():
    assert columns("INSERT INTO t (x, y) SELECT a, b + 1 FROM s", dialect="postgres") == {
        ("wh.public.t", "x", "wh.public.s", "a"), ("wh.public.t", "y", "wh.public.s", "b")}


def test_insert_without_a_column_list_maps_by_position_to_the_schema_else_by_name():
    statement = "INSERT INTO t SELECT a, b AS y FROM s"
    assert columns(statement) == {("wh.main.t", "a", "wh.main.s", "a"), ("wh.main.t", "y", "wh.main.s", "b")}
    assert columns(statement, schema={"main.t": {"k": "INT", "v": "INT"}}) == {
        ("wh.main.t", "k", "wh.main.s", "a"), ("wh.main.t", "v", "wh.main.s", "b")}
    assert columns(statement, schema={"main.t": {"k": "INT"}}) == set()  # a stale schema: no guess


def test_a_join_maps_qualified_columns_to_their_tables():
    statement = ("CREATE VIEW v AS SELECT o.id, c.name AS customer FROM orders AS o "
                 "JOIN crm.customers AS c ON c.id = o.customer_id")
    assert columns(statement) == {("wh.main.v", "id", "wh.main.orders", "id"),
                                  ("wh.main.v", "customer", "wh.crm.customers", "name")}


def test_columns_are_followed_through_ctes_subqueries_and_unions():
    assert columns("WITH recent AS (SELECT id, amount FROM orders) "
                   "INSERT INTO t SELECT id, amount * 2 AS doubled FROM (SELECT * FROM recent) AS r") == {
        ("wh.main.t", "id", "wh.main.orders", "id"), ("wh.main.t", "doubled", "wh.main.orders", "amount")}
    assert columns("CREATE TABLE t AS SELECT a FROM s UNION SELECT b FROM r") == {
        ("wh.main.t", "a", "wh.main.s", "a"), ("wh.main.t", "a", "wh.main.r", "b")}


def test_quoted_columns_keep_their_case():
    assert columns('CREATE TABLE "Report" AS SELECT "Amount" AS "Total", Region FROM "Sales"."Orders"') == {
        ("wh.main.Report", "Total", "wh.Sales.Orders", "Amount"), ("wh.main.Report", "region", "wh.Sales.Orders",
                                                                    "region")}


def test_select_star_needs_the_schema():
    statement = "CREATE TABLE t AS SELECT * FROM orders"
    schema = {"main.orders": {"id": "INTEGER", "amount": "DECIMAL(10, 2)"}}
    assert columns(statement, schema=schema) == {("wh.main.t", "id", "wh.main.orders", "id"),
                                                 ("wh.main.t", "amount", "wh.main.orders", "amount")}
    assert columns("INSERT INTO t (x, y) SELECT * FROM orders", schema=schema) == {
        ("wh.main.t", "x", "wh.main.orders", "id"), ("wh.main.t", "y", "wh.main.orders", "amount")}
    found = lineage_of(statement)
    assert (found.columns, found.reads, found.writes) == ((), ("wh.main.orders",), ("wh.main.t",))


@pytest.mark.parametrize("statement", [
    "CREATE TABLE t AS SELECT a, b FROM x JOIN y USING (id)",  # whose a? no schema to tell
    "CREATE TABLE t AS SELECT a FROM x WHERE a IN (SELECT a FROM y)",  # sqlglot gives up
    "INSERT INTO t (p, q) SELECT * FROM x, y",
])
def test_columns_that_cannot_be_resolved_leave_the_tables_intact(statement):
    found = lineage_of(statement)
    assert (found.columns, found.reads, found.writes) == ((), ("wh.main.x", "wh.main.y"), ("wh.main.t",))


def test_columns_from_temporary_tables_or_rolled_back_are_left_out():
    assert columns("CREATE TEMP TABLE stg AS SELECT a FROM s", "INSERT INTO t SELECT a FROM stg") == set()
    assert columns("BEGIN", "CREATE TABLE t AS SELECT a FROM s", "ROLLBACK",
                   "CREATE TABLE u AS SELECT a FROM s") == {("wh.main.u", "a", "wh.main.s", "a")}


# --- row counts ----------------------------------------------------------------------------------

def test_row_counts_are_summed_per_table_written_and_committed():
    found = lineage_of("INSERT INTO t SELECT * FROM s", "INSERT INTO t VALUES (1)", "UPDATE u SET x = 1",
                       "SELECT * FROM t", "CREATE VIEW v AS SELECT 1", "CREATE TEMP TABLE stg AS SELECT 1",
                       "BEGIN", "DELETE FROM u", "ROLLBACK", "BEGIN", "DELETE FROM w", "COMMIT",
                       row_counts=[3, 1, None, 4, 0, 1, None, 5, None, None, 2, None])
    assert found.row_counts == {"wh.main.t": 4, "wh.main.w": 2}
    assert lineage_of("INSERT INTO t VALUES (1)").row_counts == {}


# --- a realistic attempt, and how long each statement takes --------------------------------------

REALISTIC = [
    "CREATE TABLE IF NOT EXISTS raw_orders (id INT, customer_id INT, amount DECIMAL(10, 2), ordered_at TIMESTAMP)",
    "INSERT INTO raw_orders SELECT * FROM read_csv('orders.csv')",
    "CREATE OR REPLACE TABLE staging.orders AS SELECT id, customer_id, amount * 1.2 AS gross, "
    "CAST(ordered_at AS DATE) AS day FROM raw_orders WHERE amount > 0",
    "CREATE OR REPLACE VIEW reporting.daily AS SELECT day, count(*) AS orders, sum(gross) AS revenue "
    "FROM staging.orders GROUP BY day",
    "INSERT INTO marts.customer_revenue (customer_id, name, revenue) SELECT c.id, c.name, sum(o.gross) "
    "FROM staging.orders o JOIN crm.customers c ON c.id = o.customer_id GROUP BY c.id, c.name",
    "WITH recent AS (SELECT * FROM staging.orders WHERE day > current_date - 7), top AS (SELECT customer_id, "
    "sum(gross) AS g FROM recent GROUP BY customer_id) INSERT INTO marts.top_customers SELECT customer_id, g "
    "FROM top ORDER BY g DESC LIMIT 10",
    "UPDATE marts.customer_revenue SET revenue = 0 WHERE customer_id NOT IN (SELECT id FROM crm.customers)",
    "DELETE FROM staging.orders WHERE day < DATE '2020-01-01'",
    "CREATE TEMP TABLE stg AS SELECT o.id, o.gross, c.region FROM staging.orders o "
    "LEFT JOIN crm.customers c ON c.id = o.customer_id",
    "INSERT INTO marts.region_sales SELECT region, sum(gross) AS total FROM stg GROUP BY region",
    "CREATE TABLE marts.wide AS SELECT o.*, c.name, CASE WHEN o.gross > 100 THEN 'big' ELSE 'small' END AS size "
    "FROM staging.orders o JOIN crm.customers c ON c.id = o.customer_id",
    "SELECT region, count(*) FROM marts.region_sales GROUP BY region ORDER BY 2 DESC",
    "COPY marts.wide TO 'wide.parquet' (FORMAT parquet)",
    "MERGE INTO marts.dim_customer AS d USING crm.customers AS c ON d.id = c.id "
    "WHEN MATCHED THEN UPDATE SET name = c.name WHEN NOT MATCHED THEN INSERT VALUES (c.id, c.name)",
    "CREATE OR REPLACE TABLE marts.funnel AS SELECT s.day, s.visits, o.orders FROM (SELECT day, count(*) AS visits "
    "FROM web.sessions GROUP BY day) s LEFT JOIN (SELECT day, count(*) AS orders FROM staging.orders "
    "GROUP BY day) o USING (day)",
]
REALISTIC_SCHEMA = {
    "main.raw_orders": {"id": "INTEGER", "customer_id": "INTEGER", "amount": "DECIMAL(10,2)", "ordered_at": "TIMESTAMP"},
    "staging.orders": {"id": "INTEGER", "customer_id": "INTEGER", "gross": "DECIMAL(12,3)", "day": "DATE"},
    "crm.customers": {"id": "INTEGER", "name": "VARCHAR", "region": "VARCHAR"},
}


def test_a_realistic_attempt():
    found = lineage_of(*REALISTIC, schema=REALISTIC_SCHEMA)
    assert isinstance(found, TableLineage) and found.unknown == ()
    assert found.reads == ("wh.crm.customers", "wh.main.raw_orders", "wh.marts.region_sales", "wh.marts.wide",
                           "wh.staging.orders", "wh.web.sessions")
    assert found.writes == ("wh.main.raw_orders", "wh.marts.customer_revenue", "wh.marts.dim_customer",
                            "wh.marts.funnel", "wh.marts.region_sales", "wh.marts.top_customers", "wh.marts.wide",
                            "wh.reporting.daily", "wh.staging.orders")
    wide = {(column, source, source_column) for table, column, source, source_column in found.columns
            if table == "wh.marts.wide"}
    assert wide == {("id", "wh.staging.orders", "id"), ("customer_id", "wh.staging.orders", "customer_id"),
                    ("gross", "wh.staging.orders", "gross"), ("day", "wh.staging.orders", "day"),
                    ("name", "wh.crm.customers", "name"), ("size", "wh.staging.orders", "gross")}
    assert ("wh.staging.orders", "day", "wh.main.raw_orders", "ordered_at") in found.columns


def median_ms_per_statement(repeat=20):
    times = []
    for text in REALISTIC:
        start = time.perf_counter()
        for _ in range(repeat):
            attempt_lineage([text], warehouse_id="wh", dialect="duckdb", schema=REALISTIC_SCHEMA)
        times.append((time.perf_counter() - start) * 1000 / repeat)
    return statistics.median(times), max(times)


if __name__ == "__main__":
    median, slowest = median_ms_per_statement()
    print(f"per statement: median {median:.2f} ms, slowest {slowest:.2f} ms")
