"""Which statements of a sql_task the server's system tables answer (runs/executors/sql.py): those
naming system.lakeflow.* or system.access.*, outside strings and comments. Pure."""

import pytest

from runs.executors.sql import names_system_tables, split_statements


@pytest.mark.parametrize("sql, named", [
    ("SELECT * FROM system.lakeflow.job_run_timeline", True),
    ('SELECT * FROM "system"."access"."audit"', True),
    ("select 1 from System . Lakeflow . jobs", True),
    ("CREATE TABLE t AS SELECT * FROM system.lakeflow.jobs", True),
    ("SELECT 'system.lakeflow.jobs' AS text", False),
    ("SELECT 1 -- system.lakeflow.jobs", False),
    ("SELECT * FROM system.main.duckdb_tables", False),
    ("SELECT * FROM lakeflow.jobs", False),
])
def test_statements_naming_system_tables_are_the_servers(sql, named):
    assert names_system_tables(split_statements(sql)[0]) is named
