"""Run and task-run states, in the Jobs API's own words.

Pure: no Django. The Django choices, the API serializers and the planner all derive
from these enums; the grouped frozensets say what a state *means* so that no caller
keeps its own list.
"""

from enum import StrEnum


class RunLifeCycleState(StrEnum):
    QUEUED = "QUEUED"  # run: waiting for a concurrency slot (set by dispatch)
    PENDING = "PENDING"  # run: admitted; task: handed to the broker, not yet claimed by a worker
    RUNNING = "RUNNING"  # task: claimed by a worker, its process is alive; run: admitted and working
    TERMINATING = "TERMINATING"  # cancel asked; the worker is killing the process tree
    TERMINATED = "TERMINATED"  # finished; result_state says how
    SKIPPED = "SKIPPED"  # run: refused by max_concurrent_runs with the queue off
    INTERNAL_ERROR = "INTERNAL_ERROR"  # task: its worker died (set by the reaper)
    BLOCKED = "BLOCKED"  # task: waiting for its upstream tasks
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"  # task: a new attempt waiting for its retry time


class RunResultState(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    MAXIMUM_CONCURRENT_RUNS_REACHED = "MAXIMUM_CONCURRENT_RUNS_REACHED"
    EXCLUDED = "EXCLUDED"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"
    DISABLED = "DISABLED"


class RunIf(StrEnum):
    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


class StatusState(StrEnum):
    """The API 2.2 `status.state`, a coarser projection of the life cycle."""

    BLOCKED = "BLOCKED"
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    WAITING = "WAITING"


class TerminationCode(StrEnum):
    SUCCESS = "SUCCESS"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    USER_CANCELED = "USER_CANCELED"
    CANCELED = "CANCELED"  # canceled by the platform, e.g. a job timeout
    SKIPPED = "SKIPPED"
    DISABLED = "DISABLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    RUN_EXECUTION_ERROR = "RUN_EXECUTION_ERROR"  # the task's own code failed
    MAX_CONCURRENT_RUNS_EXCEEDED = "MAX_CONCURRENT_RUNS_EXCEEDED"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"  # a script, package or entry point that is not there
    INVALID_RUN_CONFIGURATION = "INVALID_RUN_CONFIGURATION"
    LIBRARY_INSTALLATION_ERROR = "LIBRARY_INSTALLATION_ERROR"  # the task's environment could not be built


class TerminationType(StrEnum):
    SUCCESS = "SUCCESS"
    CLIENT_ERROR = "CLIENT_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CLOUD_FAILURE = "CLOUD_FAILURE"


class CancelReason(StrEnum):
    USER = "USER"  # runs/cancel, runs/cancel-all
    TIMEOUT = "TIMEOUT"  # the job's timeout_seconds ran out


L = RunLifeCycleState
R = RunResultState

# Life cycles after which nothing more happens to this run or attempt.
FINISHED_LIFE_CYCLES = frozenset({L.TERMINATED, L.SKIPPED, L.INTERNAL_ERROR})
# A task attempt that occupies a worker or is about to.
ACTIVE_TASK_LIFE_CYCLES = frozenset({L.PENDING, L.RUNNING, L.TERMINATING})
# A run that holds one of its job's max_concurrent_runs slots.
SLOT_HOLDING_RUN_LIFE_CYCLES = frozenset({L.PENDING, L.RUNNING, L.TERMINATING})

# How a finished task looks to the tasks downstream of it.
SUCCESSFUL_RESULTS = frozenset({R.SUCCESS, R.SUCCESS_WITH_FAILURES})
FAILED_RESULTS = frozenset({R.FAILED, R.TIMEDOUT, R.UPSTREAM_FAILED, R.MAXIMUM_CONCURRENT_RUNS_REACHED})
CANCELED_RESULTS = frozenset({R.CANCELED, R.UPSTREAM_CANCELED})
# Results that never ran the task's code.
NOT_RUN_RESULTS = frozenset({R.EXCLUDED, R.DISABLED, R.UPSTREAM_FAILED, R.UPSTREAM_CANCELED})

STATUS_STATE_OF_LIFE_CYCLE = {
    L.QUEUED: StatusState.QUEUED,
    L.PENDING: StatusState.PENDING,
    L.RUNNING: StatusState.RUNNING,
    L.TERMINATING: StatusState.TERMINATING,
    L.TERMINATED: StatusState.TERMINATED,
    L.SKIPPED: StatusState.TERMINATED,
    L.INTERNAL_ERROR: StatusState.TERMINATED,
    L.BLOCKED: StatusState.BLOCKED,
    L.WAITING_FOR_RETRY: StatusState.WAITING,
}


def is_finished(life_cycle_state: str) -> bool:
    return life_cycle_state in FINISHED_LIFE_CYCLES
