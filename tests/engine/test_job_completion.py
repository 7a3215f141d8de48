"""The job-completion rule (reference §1.5): record, fire or ignore each upstream completion."""

from datetime import datetime, timedelta, timezone

import pytest

from runs.engine.job_completion import (
    IGNORED,
    NOT_MATCHING,
    RECORDED,
    Completion,
    CompletionState,
    combination,
    combination_key,
    fired,
    is_ready,
    matches,
    observe,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
A, B = "11", "12"


def ended(job, run_id, seconds, result="SUCCESS", code=None):
    return Completion(job, run_id, T0 + timedelta(seconds=seconds), result,
                      code or {"SUCCESS": "SUCCESS", "FAILED": "RUN_EXECUTION_ERROR",
                               "CANCELED": "USER_CANCELED"}.get(result, result))


def feed(*completions, state=None, monitored=(A, B), if_status=None):
    """The state after each completion, and the outcome of each."""
    state, outcomes = state or CompletionState(), []
    for completion in completions:
        observation = observe(state, completion, monitored=list(monitored), if_status=if_status)
        state, outcomes = observation.state, outcomes + [observation.outcome]
    return state, outcomes


@pytest.mark.parametrize("if_status, result, match", [
    (None, "SUCCESS", True), ("SUCCESS", "SUCCESS_WITH_FAILURES", True), ("SUCCESS", "FAILED", False),
    ("FAILED", "FAILED", True), ("FAILED", "TIMEDOUT", True), ("FAILED", "CANCELED", True),
    ("FAILED", "MAXIMUM_CONCURRENT_RUNS_REACHED", True), ("FAILED", "SUCCESS_WITH_FAILURES", False),
    ("DONE", "SUCCESS", True), ("DONE", "FAILED", True), ("DONE", "CANCELED", True),
])
def test_which_ends_match_each_if_status(if_status, result, match):
    assert matches(if_status, result) is match


def test_it_fires_once_both_upstreams_succeeded_with_them_in_the_configured_order():
    state, outcomes = feed(ended(B, 7, 1), ended(A, 5, 2))
    assert outcomes == [RECORDED, RECORDED] and is_ready(state, [A, B])
    assert [c.run_id for c in combination(state, [A, B])] == [5, 7]
    assert combination_key(combination(state, [A, B])) == T0 + timedelta(seconds=2)


def test_one_upstream_alone_waits_and_says_for_which():
    observation = observe(CompletionState(), ended(A, 5, 1), monitored=[A, B], if_status=None)
    assert observation.outcome == RECORDED and not is_ready(observation.state, [A, B])
    assert observation.reason == "run 5 of job 11 completed (SUCCESS); waiting for job 12"


def test_a_failure_does_not_count_for_success_and_is_remembered_as_the_latest_non_matching():
    state, outcomes = feed(ended(A, 5, 1, "FAILED"), ended(B, 7, 2))
    assert outcomes == [NOT_MATCHING, RECORDED] and not is_ready(state, [A, B])
    assert state.not_matching[A].termination_code == "RUN_EXECUTION_ERROR"
    state, outcomes = feed(ended(A, 6, 3), state=state)
    assert outcomes == [RECORDED] and is_ready(state, [A, B]) and A not in state.not_matching


def test_done_counts_any_end():
    state, _ = feed(ended(A, 5, 1, "CANCELED"), ended(B, 7, 2, "FAILED"), if_status="DONE")
    assert is_ready(state, [A, B])


def test_the_latest_matching_completion_of_a_job_contributes():
    state, _ = feed(ended(A, 5, 1), ended(A, 6, 2), ended(B, 7, 3))
    assert [c.run_id for c in combination(state, [A, B])] == [6, 7]


def test_after_a_firing_every_job_needs_a_new_completion():
    state, _ = feed(ended(A, 5, 1), ended(B, 7, 2))
    state, outcomes = feed(ended(A, 8, 3), state=fired(state))
    assert outcomes == [RECORDED] and not is_ready(state, [A, B])
    assert state.latest[B].run_id == 7  # still known, for the trigger's state


def test_a_completion_seen_twice_or_late_changes_nothing():
    state, _ = feed(ended(A, 5, 1), ended(B, 7, 2))
    after = fired(state)
    again, outcomes = feed(ended(B, 7, 2), ended(A, 4, 0.5), state=after)  # redelivered; an older run's late event
    assert outcomes == [IGNORED, IGNORED] and again == after


def test_what_ended_before_the_trigger_was_set_up_or_resumed_does_not_count():
    observation = observe(CompletionState(), ended(A, 5, 1), monitored=[A, B], if_status=None,
                          since=T0 + timedelta(seconds=2))
    assert observation.outcome == IGNORED and observation.state == CompletionState()


def test_jobs_not_monitored_are_ignored():
    state, outcomes = feed(ended("99", 1, 1))
    assert outcomes == [IGNORED] and state == CompletionState()


def test_keys_of_successive_combinations_only_grow():
    state, keys = CompletionState(), []
    for i, (job, at) in enumerate([(A, 5), (B, 3), (B, 9), (A, 7), (A, 8), (B, 8.5)]):
        state, _ = feed(ended(job, 100 + i, at), state=state)
        if is_ready(state, [A, B]):
            keys.append(combination_key(combination(state, [A, B])))
            state = fired(state)
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == 2


def test_the_state_survives_its_json_column():
    state, _ = feed(ended(A, 5, 1), ended(B, 6, 2, "FAILED"))
    assert CompletionState.from_dict(state.as_dict()) == state
    assert CompletionState.from_dict({}) == CompletionState.from_dict(None) == CompletionState()
