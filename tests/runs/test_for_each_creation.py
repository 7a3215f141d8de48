"""create_iterations writes the same rows as bulk_create, one per input, with ids in input order
(advance_for_each hands iterations out by id), inputs of every JSON kind kept as they were."""

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from runs.admission import create_run
from runs.for_each import create_iterations
from runs.models import TaskRun
from tests.dashboard.conftest import make_job

INPUTS = [0, "text", None, {"nested": [1, 2.5, True]}, [], "ünïcode ✓", 10**15]


@pytest.fixture
def run(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("ada", password="pw")
    made, _ = create_run(make_job(user), creator=user)
    return made


NOW = timezone.now()


def template(run, loop_key):
    return TaskRun(run=run, task_key="item", task_type="shell_command_task", for_each_key=loop_key, created_at=NOW)


def rows_of(run, loop_key):
    rows = TaskRun.objects.filter(run=run, for_each_key=loop_key).order_by("id")
    return [{k: v for k, v in model_to_dict(row).items() if k not in ("id", "for_each_key")} for row in rows]


def test_it_writes_what_bulk_create_writes(run):
    made = template(run, "fast")
    assert create_iterations(made, enumerate(INPUTS)) == len(INPUTS)
    slow = template(run, "slow")
    slow_rows = []
    for index, value in enumerate(INPUTS):
        row = TaskRun(**{f.attname: getattr(slow, f.attname) for f in TaskRun._meta.concrete_fields if not f.primary_key})
        row.iteration, row.iteration_input = index, value
        slow_rows.append(row)
    TaskRun.objects.bulk_create(slow_rows)

    assert rows_of(run, "fast") == rows_of(run, "slow")
    assert [row["iteration_input"] for row in rows_of(run, "fast")] == INPUTS


def test_ids_follow_the_inputs_order_across_batches(run):
    create_iterations(template(run, "loop"), ((i, i * 2) for i in range(25)), batch_size=10)
    rows = list(TaskRun.objects.filter(run=run, for_each_key="loop").order_by("id").values_list("iteration",
                                                                                                "iteration_input"))
    assert rows == [(i, i * 2) for i in range(25)]


def test_indexes_left_out_are_not_written(run):
    create_iterations(template(run, "loop"), [(0, "a"), (2, "c")])
    assert list(TaskRun.objects.filter(run=run, for_each_key="loop").values_list("iteration", flat=True)
                .order_by("id")) == [0, 2]
