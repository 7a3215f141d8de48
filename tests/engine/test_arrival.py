"""Timing rules of file-arrival and table-update triggers (reference §1.5)."""

from datetime import datetime, timedelta, timezone

import pytest

from runs.engine.arrival import ArrivalState, fired, observe, should_fire, tables_ready

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def ready(state, seconds, min_between=0, wait_after=0):
    return should_fire(state, now=at(seconds), min_between_seconds=min_between,
                       wait_after_seconds=wait_after)


def changed_at(*seconds, state=ArrivalState()):
    for second in seconds:
        state = observe(state, changed=True, now=at(second))
    return state


# --- observe and fire --------------------------------------------------------------------------

def test_nothing_fires_before_a_change_is_seen():
    state = observe(ArrivalState(), changed=False, now=at(0))
    assert state == ArrivalState()
    assert not ready(state, 1000)


def test_a_change_without_timers_fires_at_once():
    assert ready(changed_at(0), 0)


def test_a_change_is_pending_from_its_first_sighting_and_the_latest_counts_for_waiting():
    state = changed_at(0, 30)
    state = observe(state, changed=False, now=at(60))
    assert (state.pending_since, state.last_change_at) == (at(0), at(30))


def test_firing_clears_the_pending_change_and_remembers_when():
    state = fired(changed_at(0), at(5))
    assert state.pending_since is None and state.last_fired_at == at(5)
    assert not ready(state, 1000)


# --- each timer alone --------------------------------------------------------------------------

def test_min_time_between_triggers_counts_from_the_last_run_the_trigger_started():
    state = changed_at(100, state=fired(changed_at(0), at(0)))
    assert not ready(state, 100, min_between=300)
    assert not ready(state, 299, min_between=300)
    assert ready(state, 300, min_between=300)


def test_min_time_between_triggers_does_not_delay_the_first_run():
    assert ready(changed_at(0), 0, min_between=300)


def test_changes_during_the_min_time_are_kept_until_it_ends():
    state = fired(changed_at(0), at(0))
    state = changed_at(10, state=state)
    state = observe(state, changed=False, now=at(200))
    assert ready(state, 300, min_between=300)


def test_wait_after_last_change_counts_from_the_latest_change():
    state = changed_at(0)
    assert not ready(state, 59, wait_after=60)
    assert ready(state, 60, wait_after=60)


def test_a_burst_of_changes_keeps_postponing_the_run_until_it_stops():
    state = ArrivalState()
    for second in range(0, 600, 30):  # a file every 30 s for 10 minutes
        state = observe(state, changed=True, now=at(second))
        assert not ready(state, second + 29, wait_after=60)
    assert not ready(state, 570 + 59, wait_after=60)
    assert ready(state, 570 + 60, wait_after=60)
    assert state.pending_since == at(0)


# --- both timers -------------------------------------------------------------------------------

def test_both_timers_must_allow_the_run():
    state = changed_at(250, state=fired(changed_at(0), at(0)))
    # min_between ends at 300, wait_after at 310: the later one decides.
    assert not ready(state, 300, min_between=300, wait_after=60)
    assert ready(state, 310, min_between=300, wait_after=60)
    # A quiet change long ago: min_between alone holds the run back.
    early = changed_at(10, state=fired(changed_at(0), at(0)))
    assert not ready(early, 200, min_between=300, wait_after=60)
    assert ready(early, 300, min_between=300, wait_after=60)


def test_after_firing_the_next_change_waits_for_both_timers_again():
    state = fired(changed_at(0), at(60))
    state = changed_at(400, state=state)
    assert not ready(state, 420, min_between=300, wait_after=60)
    assert ready(state, 460, min_between=300, wait_after=60)


# --- storage -----------------------------------------------------------------------------------

def test_the_state_round_trips_through_a_json_column():
    state = fired(changed_at(0, 30), at(90))
    stored = state.as_dict()
    assert stored == {"pending_since": None, "last_change_at": "2024-05-01T12:00:30+00:00",
                      "last_fired_at": "2024-05-01T12:01:30+00:00"}
    assert ArrivalState.from_dict(stored) == state


@pytest.mark.parametrize("stored", [None, {}, {"last_fired_at": None}])
def test_an_empty_column_is_the_initial_state(stored):
    assert ArrivalState.from_dict(stored) == ArrivalState()


# --- table conditions --------------------------------------------------------------------------

TABLES = ["main.sales.orders", "main.sales.customers"]


@pytest.mark.parametrize("updated, any_updated, all_updated", [
    (set(), False, False),
    ({"main.sales.orders"}, True, False),
    ({"main.sales.orders", "main.sales.customers"}, True, True),
    ({"MAIN.Sales.ORDERS", "main.sales.Customers"}, True, True),
    ({"main.sales.other"}, False, False),
])
def test_any_and_all_updated(updated, any_updated, all_updated):
    assert tables_ready("ANY_UPDATED", TABLES, updated) is any_updated
    assert tables_ready("ALL_UPDATED", TABLES, updated) is all_updated


def test_listed_names_compare_case_insensitively_too():
    assert tables_ready("ALL_UPDATED", ["Main.Sales.Orders"], {"main.sales.orders"})


def test_all_updated_of_no_tables_is_not_ready():
    assert not tables_ready("ALL_UPDATED", [], {"main.sales.orders"})


def test_an_unknown_condition_is_an_error():
    with pytest.raises(ValueError, match="ANY_UPDATED or ALL_UPDATED"):
        tables_ready("SOME_UPDATED", TABLES, set())
