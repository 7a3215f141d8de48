"""How runs and task attempts end: life cycle, result, termination code and type, message. Pure.

Every terminal state is decided here and written by one shell function each (runs/transitions.py
end_attempt and end_run), so two places can never word or code the same ending differently.
"""

from __future__ import annotations

from dataclasses import dataclass

from runs.engine.states import (
    CancelReason,
    RunLifeCycleState as L,
    RunResultState as R,
    TerminationCode as C,
    TerminationType as T,
)


@dataclass(frozen=True)
class Ending:
    life_cycle_state: L
    result_state: R
    termination_code: C
    termination_type: T
    message: str = ""

    def as_fields(self) -> dict:
        """The model fields it sets (besides ended_at)."""
        return {"life_cycle_state": self.life_cycle_state, "result_state": self.result_state,
                "termination_code": self.termination_code, "termination_type": self.termination_type,
                "state_message": self.message}

    def as_event(self) -> dict:
        """What the ending's event records."""
        return {"life_cycle_state": self.life_cycle_state, "result_state": self.result_state,
                "termination_code": self.termination_code, "message": self.message}


def default_code(result_state: R) -> C:
    return {R.SUCCESS: C.SUCCESS, R.FAILED: C.RUN_EXECUTION_ERROR, R.TIMEDOUT: C.CANCELED,
            R.CANCELED: C.USER_CANCELED}.get(result_state, C.RUN_EXECUTION_ERROR)


def default_type(result_state: R) -> T:
    return T.SUCCESS if result_state in (R.SUCCESS, R.CANCELED) else T.CLIENT_ERROR


def attempt_ended(result_state: R, message: str = "", *, life_cycle_state: L = L.TERMINATED,
                  code: C | None = None, type_: T | None = None) -> Ending:
    """An attempt that ran (or failed to start), with the codes its result implies unless given.
    A code that is not the API's (a task process reports its own) becomes the default one."""
    code = C(code) if code in C._value2member_map_ else default_code(result_state)
    return Ending(life_cycle_state, R(result_state), code, T(type_ or default_type(result_state)), message)


def skipped(result_state: R, message: str) -> Ending:
    """A task the planner will not run: excluded, disabled, upstream failed or canceled."""
    code = {R.DISABLED: C.DISABLED, R.UPSTREAM_CANCELED: C.CANCELED}.get(result_state, C.SKIPPED)
    kind = T.SUCCESS if result_state in (R.EXCLUDED, R.DISABLED) else T.CLIENT_ERROR
    return Ending(L.TERMINATED, R(result_state), code, kind, message)


def canceled_before_start(message: str) -> Ending:
    return Ending(L.TERMINATED, R.CANCELED, C.USER_CANCELED, T.SUCCESS, message)


def lost_with_its_worker(message: str, *, canceling: bool) -> Ending:
    """An attempt whose worker stopped heart-beating: failed as lost, or canceled if it was."""
    if canceling:
        return Ending(L.TERMINATED, R.CANCELED, C.USER_CANCELED, T.SUCCESS, message)
    return Ending(L.INTERNAL_ERROR, R.FAILED, C.INTERNAL_ERROR, T.INTERNAL_ERROR, message)


def internal_error(message: str) -> Ending:
    """The server, not the task, could not go on."""
    return Ending(L.INTERNAL_ERROR, R.FAILED, C.INTERNAL_ERROR, T.INTERNAL_ERROR, message)


def canceled_while_queued(reason: CancelReason) -> Ending:
    """A run canceled before it was admitted: by a user, or by its job's timeout."""
    if reason == CancelReason.TIMEOUT:
        return Ending(L.TERMINATED, R.TIMEDOUT, C.CANCELED, T.SUCCESS, "Run timed out")
    return Ending(L.TERMINATED, R.CANCELED, C.USER_CANCELED, T.SUCCESS, "Run canceled by user")


def skipped_at_admission(limit: int) -> Ending:
    return Ending(L.SKIPPED, R.MAXIMUM_CONCURRENT_RUNS_REACHED, C.MAX_CONCURRENT_RUNS_EXCEEDED, T.CLIENT_ERROR,
                  f"Skipped: the job already has {limit} active run(s), its max_concurrent_runs, "
                  "and queueing is off")


def run_finished(result_state: R, code: C, type_: T, message: str) -> Ending:
    """A run the planner finished (FinishRun)."""
    return Ending(L.TERMINATED, R(result_state), C(code), T(type_), message)
