"""dbutils in-process: the rules of task values, widgets and notebook.exit."""

import json
import math

import pytest

from runs.executors import dbutils as dbutils_module
from runs.executors.dbutils import DBUtils, InputWidgetNotDefined


def make(tmp_path=None, **kwargs):
    values_path = str(tmp_path / "values.json") if tmp_path else None
    return DBUtils(task_key="me", values_path=values_path, **kwargs)


def test_a_value_of_exactly_48_kib_of_json_is_accepted_and_one_byte_more_is_not():
    task_values = make().jobs.taskValues
    task_values.set("ok", "é" * (24 * 1024 - 1))  # 2 bytes each in UTF-8, plus the quotes
    with pytest.raises(ValueError, match="is 49153 bytes as JSON; the limit is 49152"):
        task_values.set("big", "x" * (48 * 1024 - 1))
    assert list(task_values.values()) == ["ok"]


def test_values_that_are_not_json_are_refused_with_the_reason():
    task_values = make().jobs.taskValues
    with pytest.raises(TypeError, match="'when' is not JSON-serialisable"):
        task_values.set("when", {1, 2})
    with pytest.raises(TypeError, match="'ratio' is not JSON-serialisable"):
        task_values.set("ratio", math.nan)
    with pytest.raises(TypeError, match="keys must be strings"):
        task_values.set(3, "x")


def test_every_set_rewrites_the_values_file(tmp_path):
    task_values = make(tmp_path).jobs.taskValues
    task_values.set("a", 1)
    assert json.loads((tmp_path / "values.json").read_text()) == {"a": 1}
    task_values.set("b", {"nested": ["ü"]})
    assert json.loads((tmp_path / "values.json").read_text()) == {"a": 1, "b": {"nested": ["ü"]}}


def test_a_value_is_kept_as_it_was_when_set():
    task_values = make().jobs.taskValues
    rows = [1]
    task_values.set("rows", rows)
    rows.append(2)
    assert task_values.get("me", "rows") == [1]


def test_get_outside_a_job_returns_the_debug_value():
    task_values = DBUtils(in_job=False).jobs.taskValues
    assert task_values.get("up", "k", default=1, debugValue=2) == 2
    with pytest.raises(TypeError, match="debugValue"):
        task_values.get("up", "k")


def test_a_dropdown_default_must_be_one_of_its_choices():
    widgets = make().widgets
    with pytest.raises(ValueError, match="'x' of widget 'env' is not one of"):
        widgets.dropdown("env", "x", ["dev", "prod"])


def test_removed_widgets_are_undefined_again_but_job_values_stay():
    widgets = make(widgets={"date": "2024-01-01"}).widgets
    widgets.text("limit", "10")
    widgets.remove("limit")
    with pytest.raises(InputWidgetNotDefined, match="'limit'"):
        widgets.get("limit")
    assert widgets.getArgument("limit", "5") == "5"
    assert widgets.get("date") == "2024-01-01"


def test_notebook_exit_keeps_the_first_5_mb_and_marks_it_truncated():
    notebook = make().notebook
    with pytest.raises(BaseException) as caught:
        notebook.exit("€" * (2 * 1024 * 1024))  # 6 MiB of UTF-8
    assert not isinstance(caught.value, Exception)  # `except Exception` does not swallow it
    assert len(notebook.result.encode()) <= dbutils_module.MAX_NOTEBOOK_RESULT_BYTES
    assert notebook.result_truncated


def test_notebook_exit_turns_other_values_into_text():
    notebook = make().notebook
    with pytest.raises(BaseException):
        notebook.exit(42)
    assert notebook.result == "42"
