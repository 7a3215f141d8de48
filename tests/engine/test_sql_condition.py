"""The sql_condition gate's decision from a query result (runs/engine/sql_condition.py): no
warehouse, results given as the sql executor's preview."""

from runs.engine.sql_condition import condition_verdict, shown


def result(columns, *rows, truncated=False):
    return {"columns": columns, "rows": [dict(zip(columns, row)) for row in rows],
            "row_count_shown": len(rows), "truncated": truncated}


def test_returns_rows_fires_on_any_row_and_says_how_many():
    verdict = condition_verdict("QUERY_RETURNS_ROWS", result(["id"], [1], [2], [3]), None)
    assert (verdict.satisfied, verdict.reason) == (True, "the query returned 3 rows")
    assert condition_verdict("QUERY_RETURNS_ROWS", result(["id"], [1]), None).reason == "the query returned 1 row"


def test_returns_rows_does_not_fire_on_no_rows():
    verdict = condition_verdict("QUERY_RETURNS_ROWS", result(["id"]), {"latest_condition_evaluation_satisfied": True})
    assert (verdict.satisfied, verdict.reason, verdict.error) == (False, "the query returned no rows", None)


def test_a_result_past_the_preview_is_at_least_that_many_rows():
    verdict = condition_verdict("QUERY_RETURNS_ROWS", result(["id"], *[[i] for i in range(1000)], truncated=True), None)
    assert verdict.reason == "the query returned at least 1,000 rows"
    one_huge_row = result(["blob"], truncated=True)  # its first row alone passed the preview's bytes
    assert condition_verdict("QUERY_RETURNS_ROWS", one_huge_row, None).reason == "the query returned at least 1 row"


def test_value_changes_keeps_the_first_value_as_its_baseline_without_firing():
    verdict = condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [4]), None)
    assert (verdict.satisfied, verdict.value) == (False, 4)
    assert verdict.reason == "the first evaluation keeps the value 4 as the baseline"
    # A state without a kept value (the mode was QUERY_RETURNS_ROWS before) is a first evaluation too.
    again = condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [4]), {"latest_condition_evaluation_satisfied": False})
    assert (again.satisfied, again.value) == (False, 4)


def test_value_changes_fires_when_the_value_differs_from_the_last_one():
    verdict = condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [5]), {"last_value": 4})
    assert (verdict.satisfied, verdict.reason, verdict.value) == (True, "the value changed from 4 to 5", 5)


def test_value_changes_does_not_fire_on_the_same_value():
    verdict = condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [4]), {"last_value": 4})
    assert (verdict.satisfied, verdict.reason, verdict.value) == (False, "the value is still 4", 4)
    assert not condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [4.0]), {"last_value": 4}).satisfied


def test_null_is_a_value_and_text_is_compared_as_written():
    assert condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [None]), {"last_value": 4}).reason == \
        "the value changed from 4 to NULL"
    assert not condition_verdict("RESULT_VALUE_CHANGES", result(["n"], [None]), {"last_value": None}).satisfied
    verdict = condition_verdict("RESULT_VALUE_CHANGES", result(["d"], ["2024-05-02"]), {"last_value": "2024-05-01"})
    assert verdict.reason == 'the value changed from "2024-05-01" to "2024-05-02"'
    assert condition_verdict("RESULT_VALUE_CHANGES", result(["n"], ["4"]), {"last_value": 4}).satisfied


def test_value_changes_needs_one_row_of_one_column():
    for bad, shape in [(result(["n"]), "0 rows of 1 column"),
                       (result(["n"], [1], [2]), "2 rows of 1 column"),
                       (result(["a", "b"], [1, 2]), "1 row of 2 columns")]:
        verdict = condition_verdict("RESULT_VALUE_CHANGES", bad, {"last_value": 1})
        assert not verdict.satisfied
        assert verdict.error == ("RESULT_VALUE_CHANGES needs a result of one row and one column; "
                                 f"the query returned {shape}")


def test_a_long_value_is_shortened_in_the_reason():
    assert shown("x" * 200) == '"' + "x" * 76 + "..."
    assert len(shown("x" * 200)) == 80
