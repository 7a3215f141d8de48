"""The sql_condition gate's save-time check (jobs/spec/sql_condition.py): every refusal names its
field, and the query must be one statement that only reads."""

import pytest

from jobs.spec.checker import Checker
from jobs.spec.sql_condition import check_sql_condition, trigger_mode

PATH = "trigger.sql_condition"
GOOD = {"warehouse_id": "default", "query": "SELECT count(*) FROM orders", "trigger_mode": "QUERY_RETURNS_ROWS"}


def problems(block, path=PATH):
    c = Checker()
    check_sql_condition(c, block, path)
    return [(p.path, p.message) for p in c.problems]


@pytest.mark.parametrize("block", [
    GOOD,
    {**GOOD, "trigger_mode": "RESULT_VALUE_CHANGES"},
    {"warehouse_id": "default", "query": "SELECT 1"},  # unset mode: QUERY_RETURNS_ROWS
    {**GOOD, "query": "WITH recent AS (SELECT * FROM orders) SELECT max(id) FROM recent;"},
    {**GOOD, "query": "-- any new order?\nSELECT 1 FROM orders WHERE amount > 100 LIMIT 1"},
    {**GOOD, "query": "VALUES (1)"},
    {**GOOD, "query": "FROM orders"},  # DuckDB's short form
    {**GOOD, "query": "SELECT 1 UNION ALL SELECT 2"},
    {**GOOD, "query": "SELECT id FROM orders WHERE note LIKE 'a%' AND tags @> ARRAY['x']"},  # Postgres
    {**GOOD, "sql_query_id": "q-123"},  # kept as a label: query is what runs
])
def test_a_valid_block_has_no_problems(block):
    assert problems(block) == []


def test_an_unset_trigger_mode_means_query_returns_rows():
    assert trigger_mode({"warehouse_id": "w", "query": "SELECT 1"}) == "QUERY_RETURNS_ROWS"
    assert trigger_mode({**GOOD, "trigger_mode": "RESULT_VALUE_CHANGES"}) == "RESULT_VALUE_CHANGES"


def test_a_block_that_is_not_an_object_is_refused_at_its_path():
    assert problems("SELECT 1", "triggers[2].sql_condition") == [
        ("triggers[2].sql_condition", "must be an object with warehouse_id, query and trigger_mode")]


def test_warehouse_id_and_query_are_required():
    assert problems({}) == [(f"{PATH}.warehouse_id", "is required"), (f"{PATH}.query", "is required")]


@pytest.mark.parametrize("field, value, message", [
    ("warehouse_id", "", "must not be empty"),
    ("warehouse_id", 7, "must be a string"),
    ("query", "   ", "must not be empty"),
    ("query", ["SELECT 1"], "must be a string"),
    ("sql_query_id", 12, "must be a string"),
])
def test_a_field_of_the_wrong_kind_is_refused_with_its_path(field, value, message):
    assert problems({**GOOD, field: value}) == [(f"{PATH}.{field}", message)]


def test_a_saved_query_id_alone_is_refused_saying_to_give_the_query_text():
    [(path, message)] = problems({"warehouse_id": "default", "sql_query_id": "q-123"}, "schedule.sql_condition")
    assert path == "schedule.sql_condition.query"
    assert "saved queries (sql_query_id) are not supported" in message and "give the condition's SQL text as query" in message


def test_an_explicit_unspecified_trigger_mode_is_refused():
    [(path, message)] = problems({**GOOD, "trigger_mode": "SQL_CONDITION_TRIGGER_MODE_UNSPECIFIED"})
    assert path == f"{PATH}.trigger_mode"
    assert "is not a trigger mode" in message and "QUERY_RETURNS_ROWS or RESULT_VALUE_CHANGES" in message


def test_an_unknown_trigger_mode_is_refused():
    assert problems({**GOOD, "trigger_mode": "ROWS"}) == [
        (f"{PATH}.trigger_mode", "must be one of QUERY_RETURNS_ROWS, RESULT_VALUE_CHANGES")]


@pytest.mark.parametrize("query, kind", [
    ("INSERT INTO orders VALUES (1)", "INSERT"),
    ("UPDATE orders SET amount = 0", "UPDATE"),
    ("DELETE FROM orders", "DELETE"),
    ("CREATE TABLE copy AS SELECT * FROM orders", "CREATE TABLE"),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", "CREATE VIEW"),
    ("DROP TABLE orders", "DROP TABLE"),
    ("ALTER TABLE orders ADD COLUMN x INT", "ALTER TABLE"),
    ("TRUNCATE orders", "TRUNCATE"),
    ("COPY orders TO '/tmp/out.csv'", "COPY"),
    ("EXPLAIN SELECT 1", "EXPLAIN"),
    ("ATTACH '/tmp/other.db'", "ATTACH"),
])
def test_a_statement_that_is_not_a_read_is_refused_by_its_kind(query, kind):
    assert problems({**GOOD, "query": query}) == [
        (f"{PATH}.query", f"must be a query that reads (SELECT, WITH ... SELECT, VALUES), not {kind}")]


def test_a_write_hidden_in_a_read_is_refused():
    assert problems({**GOOD, "query": "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone"}) == [
        (f"{PATH}.query", "must only read: it contains DELETE")]
    assert problems({**GOOD, "query": "SELECT * INTO copy FROM orders"}) == [
        (f"{PATH}.query", "must only read: SELECT ... INTO creates a table")]


def test_more_than_one_statement_is_refused():
    assert problems({**GOOD, "query": "SELECT 1; DROP TABLE orders"}) == [
        (f"{PATH}.query", "must be one statement; this has 2")]


def test_text_sqlglot_cannot_read_is_judged_by_its_first_word_and_statement_count():
    # Neither dialect's parser reads these; the warehouse may, so a read is let through.
    assert problems({**GOOD, "query": "SELECT $$unterminated"}) == []
    assert problems({**GOOD, "query": "SELEC 1"}) == [
        (f"{PATH}.query", "must be a query that reads (SELECT, WITH ... SELECT, VALUES), not SELEC")]


def test_a_query_past_the_size_limit_is_refused_before_parsing():
    [(path, message)] = problems({**GOOD, "query": "SELECT 1 " + "-" * 70_000})
    assert path == f"{PATH}.query" and message.startswith("must be at most 65,536 characters")


def test_every_problem_of_a_block_is_reported_at_once():
    assert [path for path, _ in problems({"warehouse_id": "", "query": "DELETE FROM t", "trigger_mode": "X"},
                                         "triggers[0].sql_condition")] == [
        "triggers[0].sql_condition.warehouse_id", "triggers[0].sql_condition.query",
        "triggers[0].sql_condition.trigger_mode"]
