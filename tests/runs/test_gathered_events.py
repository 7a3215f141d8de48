"""gathered(): the events a block records are written together as it ends, in their order; an
event recorded inside a nested savepoint is written at once, so its rollback takes it along."""

import pytest
from django.db import transaction

from runs.admission import create_run
from runs.events import gathered, record
from runs.models import RunEvent
from tests.runs.conftest import make_job, shell


@pytest.fixture
def run(alice, broker):
    made, _ = create_run(make_job(alice, [shell("a")]))
    return made


def types_of(run):
    return list(RunEvent.objects.filter(run=run, type__startswith="test.").order_by("id").values_list("type", flat=True))


def test_events_of_a_block_are_written_as_it_ends_in_their_order(run, django_assert_num_queries):
    with transaction.atomic(), gathered():
        with django_assert_num_queries(0):
            record(run, "test.one", None, run.created_at)
            record(run, "test.two", None, run.created_at)
        assert types_of(run) == []
    assert types_of(run) == ["test.one", "test.two"]


def test_a_block_that_raises_writes_none(run):
    with pytest.raises(RuntimeError), transaction.atomic(), gathered():
        record(run, "test.lost", None, run.created_at)
        raise RuntimeError("boom")
    assert types_of(run) == []


def test_an_event_in_a_savepoint_that_rolls_back_goes_with_it(run):
    with transaction.atomic(), gathered():
        record(run, "test.kept", None, run.created_at)
        try:
            with transaction.atomic():
                record(run, "test.rolled_back", None, run.created_at)
                raise RuntimeError("the savepoint fails")
        except RuntimeError:
            pass
        record(run, "test.after", None, run.created_at)
    assert types_of(run) == ["test.kept", "test.after"]
