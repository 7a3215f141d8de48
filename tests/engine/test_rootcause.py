"""Where a run's trouble started, on tiny named graphs, and when two failures count as the same."""

from runs.engine.planner import Dependency, TaskNode, TaskStatus, build_graph
from runs.engine.rootcause import (
    Origin,
    error_line,
    exception_type,
    failure_of,
    find_origins,
    is_explained,
    last_lines,
    parameter_changes,
    same_failure,
)
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R


def node(key, *deps):
    return TaskNode(key, tuple(Dependency(d) for d in deps))


def chain():
    return build_graph([node("extract"), node("transform", "extract"), node("load", "transform")])


def diamond():
    return build_graph([node("top"), node("left", "top"), node("right", "top"), node("bottom", "left", "right")])


def ended(**results):
    # "lost" stands for a worker that died: life cycle INTERNAL_ERROR.
    return {
        key: TaskStatus(key, L.INTERNAL_ERROR, R.FAILED) if result == "lost" else TaskStatus(key, L.TERMINATED, result)
        for key, result in results.items()
    }


def test_a_chain_whose_first_task_failed_has_only_that_task_as_origin():
    statuses = ended(extract=R.FAILED, transform=R.UPSTREAM_FAILED, load=R.UPSTREAM_FAILED)

    assert find_origins(chain(), statuses) == [Origin("extract", "failed", ("transform", "load"))]


def test_a_diamond_with_both_sides_failing_has_two_origins_sharing_the_bottom():
    statuses = ended(top=R.SUCCESS, left=R.FAILED, right=R.TIMEDOUT, bottom=R.UPSTREAM_FAILED)

    assert find_origins(diamond(), statuses) == [
        Origin("left", "failed", ("bottom",)),
        Origin("right", "failed", ("bottom",)),
    ]


def test_a_task_whose_worker_died_is_an_origin():
    statuses = ended(extract="lost", transform=R.UPSTREAM_FAILED, load=R.UPSTREAM_FAILED)

    assert [o.task_key for o in find_origins(chain(), statuses)] == ["extract"]


def test_a_canceled_task_is_an_origin_of_the_tasks_it_canceled_downstream():
    statuses = ended(extract=R.SUCCESS, transform=R.CANCELED, load=R.UPSTREAM_CANCELED)

    assert find_origins(chain(), statuses) == [Origin("transform", "canceled", ("load",))]


def test_failures_come_before_cancels():
    statuses = ended(top=R.SUCCESS, left=R.CANCELED, right=R.FAILED, bottom=R.UPSTREAM_CANCELED)

    assert [(o.task_key, o.kind) for o in find_origins(diamond(), statuses)] == [("right", "failed"),
                                                                                 ("left", "canceled")]


def test_a_run_that_succeeded_or_is_still_going_has_no_origins():
    assert find_origins(chain(), ended(extract=R.SUCCESS, transform=R.SUCCESS, load=R.SUCCESS)) == []
    still_going = {"extract": TaskStatus("extract", L.RUNNING), "transform": TaskStatus("transform", L.BLOCKED)}
    assert find_origins(chain(), still_going) == []


def test_a_task_no_longer_in_the_graph_can_still_be_an_origin():
    statuses = ended(extract=R.SUCCESS, transform=R.SUCCESS, load=R.SUCCESS, gone=R.FAILED)

    assert find_origins(chain(), statuses) == [Origin("gone", "failed", ())]


def test_only_finished_runs_that_did_not_succeed_are_explained():
    assert is_explained(L.TERMINATED, R.FAILED)
    assert is_explained(L.TERMINATED, R.TIMEDOUT)
    assert is_explained(L.TERMINATED, R.CANCELED)
    assert is_explained(L.TERMINATED, R.SUCCESS_WITH_FAILURES)
    assert is_explained(L.INTERNAL_ERROR, None)
    assert not is_explained(L.TERMINATED, R.SUCCESS)
    assert not is_explained(L.RUNNING, None)
    assert not is_explained(L.SKIPPED, R.MAXIMUM_CONCURRENT_RUNS_REACHED)


def test_the_error_line_is_the_first_non_blank_line_without_colour_codes():
    assert error_line("\n  \x1b[31mValueError: boom\x1b[0m  \nmore") == "ValueError: boom"
    assert error_line("") == ""


def test_the_exception_type_comes_from_the_error_or_the_end_of_the_traceback():
    assert exception_type("ValueError: bad row 7") == "ValueError"
    assert exception_type("py4j.protocol.Py4JJavaError: An error occurred") == "py4j.protocol.Py4JJavaError"
    assert exception_type("KeyboardInterrupt") == "KeyboardInterrupt"
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\n    f()\nKeyError: \'day\'\n'
    assert exception_type("Task exited with code 1", trace) == "KeyError"
    assert exception_type("Task exited with code 1") is None
    assert exception_type("Note: the disk is full") is None


def test_two_failures_are_the_same_when_their_first_line_or_exception_type_match():
    first = failure_of(R.FAILED, "ValueError: bad row 7")
    assert same_failure(first, failure_of(R.FAILED, "ValueError: bad row 9"))
    assert same_failure(failure_of(R.FAILED, "Task exited with code 3"),
                        failure_of(R.FAILED, "Task exited with code 3"))
    assert not same_failure(first, failure_of(R.FAILED, "KeyError: 'day'"))
    assert not same_failure(failure_of(R.FAILED, "Task exited with code 3"),
                            failure_of(R.FAILED, "Task exited with code 4"))
    assert not same_failure(first, failure_of(R.TIMEDOUT, "ValueError: bad row 7"))
    assert not same_failure(failure_of(R.FAILED, ""), failure_of(R.FAILED, ""))


def test_the_last_lines_of_a_cut_log_drop_the_partial_first_line_and_trailing_blanks():
    text = "tial line\none\ntwo\n\x1b[1mthree\x1b[0m\n\n\n"

    assert last_lines(text, 2, truncated=True) == ["two", "three"]
    assert last_lines(text, 20, truncated=True) == ["one", "two", "three"]
    assert last_lines(text, 20) == ["tial line", "one", "two", "three"]
    assert last_lines("", 20) == []


def test_parameter_changes_list_changed_added_and_removed_parameters():
    before = [{"name": "day", "default": "mon", "value": "mon"}, {"name": "env", "default": "prod", "value": "prod"},
              {"name": "old", "default": "x", "value": "x"}]
    after = [{"name": "day", "default": "mon", "value": "tue"}, {"name": "env", "default": "prod", "value": "prod"},
             {"name": "new", "default": "y", "value": "y"}]

    assert parameter_changes(before, after) == [
        {"name": "day", "before": "mon", "after": "tue"},
        {"name": "new", "before": None, "after": "y"},
        {"name": "old", "before": "x", "after": None},
    ]
    assert parameter_changes(after, after) == []
