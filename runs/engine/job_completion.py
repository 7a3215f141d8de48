"""The job-completion trigger's rule (reference §1.5; pure: times are arguments).

A trigger monitors 1 to 10 upstream jobs with one ``if_status``. Each matching completion of a
monitored job is recorded; once every monitored job has one since the last firing, the trigger
fires one run with that combination and starts over. A job that completes several times before
the others do contributes its latest matching completion (Databricks' documented rule).

Which completions match, from the SDK's JobCompletionTriggerConfigurationIfStatus:
- SUCCESS (the default): the run ended SUCCESS or SUCCESS_WITH_FAILURES;
- FAILED: any other end, canceled and skipped runs included ("neither SUCCESS nor
  SUCCESS_WITH_FAILURES");
- DONE: any end.

A completion is recorded only if it is newer than every completion of its job seen so far
(completion time, then run id): seeing one twice (a redelivered event) or late (an older run
whose event comes after a newer one's) changes nothing, so the rule is idempotent by itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

SUCCESS, FAILED, DONE = "SUCCESS", "FAILED", "DONE"
IF_STATUSES = (SUCCESS, FAILED, DONE)
SUCCESSFUL = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})

IGNORED, NOT_MATCHING, RECORDED = "ignored", "not_matching", "recorded"


@dataclass(frozen=True)
class Completion:
    """One run of a monitored job that ended."""

    job_id: str
    run_id: int
    completion_time: datetime
    result_state: str
    termination_code: str

    def newer_than(self, other: Completion | None) -> bool:
        return other is None or (self.completion_time, self.run_id) > (other.completion_time, other.run_id)

    def as_dict(self) -> dict:
        return {**asdict(self), "completion_time": self.completion_time.isoformat()}

    @classmethod
    def from_dict(cls, data: dict) -> Completion:
        return cls(str(data["job_id"]), int(data["run_id"]), datetime.fromisoformat(data["completion_time"]),
                   data.get("result_state") or "", data.get("termination_code") or "")


@dataclass(frozen=True)
class CompletionState:
    """What a trigger has seen, per monitored job id (a string, as the API writes it)."""

    pending: dict[str, Completion] = field(default_factory=dict)  # matching, since the last firing
    latest: dict[str, Completion] = field(default_factory=dict)  # the latest matching one ever seen
    not_matching: dict[str, Completion] = field(default_factory=dict)  # a later end that did not match

    def as_dict(self) -> dict:
        return {name: {job: c.as_dict() for job, c in getattr(self, name).items()}
                for name in ("pending", "latest", "not_matching")}

    @classmethod
    def from_dict(cls, data: dict | None) -> CompletionState:
        data = data or {}
        return cls(**{name: {str(job): Completion.from_dict(c) for job, c in (data.get(name) or {}).items()}
                      for name in ("pending", "latest", "not_matching")})


@dataclass(frozen=True)
class Observation:
    state: CompletionState
    outcome: str  # IGNORED, NOT_MATCHING or RECORDED
    reason: str


def matches(if_status: str | None, result_state: str | None) -> bool:
    successful = result_state in SUCCESSFUL
    return {SUCCESS: successful, FAILED: not successful, DONE: True}[if_status or SUCCESS]


def observe(state: CompletionState, completion: Completion, *, monitored: list[str],
            if_status: str | None, since: datetime | None = None) -> Observation:
    """The state after `completion` ended, and what it meant for the trigger; `since`: when the
    trigger was set up or last resumed (what ended before does not count)."""
    job = completion.job_id
    if job not in monitored:
        return Observation(state, IGNORED, f"job {job} is not monitored")
    if since is not None and completion.completion_time < since:
        return Observation(state, IGNORED, f"run {completion.run_id} of job {job} ended before the trigger was "
                                           "set up or resumed")
    seen = [state.latest.get(job), state.not_matching.get(job)]
    if not all(completion.newer_than(c) for c in seen):
        return Observation(state, IGNORED, f"run {completion.run_id} of job {job} was already seen, or a newer one")
    ended = completion.result_state or completion.termination_code
    if not matches(if_status, completion.result_state):
        return Observation(replace(state, not_matching={**state.not_matching, job: completion}), NOT_MATCHING,
                           f"run {completion.run_id} of job {job} ended {ended}, which does not match "
                           f"if_status {if_status or SUCCESS}: not counted")
    not_matching = {j: c for j, c in state.not_matching.items() if j != job}
    new = CompletionState({**state.pending, job: completion}, {**state.latest, job: completion}, not_matching)
    waiting = waiting_for(new, monitored)
    why = f"run {completion.run_id} of job {job} completed ({ended})"
    return Observation(new, RECORDED, f"{why}; waiting for job {', '.join(waiting)}" if waiting else why)


def waiting_for(state: CompletionState, monitored: list[str]) -> list[str]:
    """The monitored jobs with no matching completion since the last firing."""
    return [job for job in monitored if job not in state.pending]


def is_ready(state: CompletionState, monitored: list[str]) -> bool:
    return bool(monitored) and not waiting_for(state, monitored)


def combination(state: CompletionState, monitored: list[str]) -> list[Completion]:
    """The completions a firing uses, in the configured order of the jobs."""
    return [state.pending[job] for job in monitored]


def combination_key(completions: list[Completion]) -> datetime:
    """The instant the combination became complete: its last completion. Later combinations of
    one trigger have later keys (each job's completions only move forward), so it keys the run
    (Run.trigger_slot) and a redelivered or repeated firing finds the run it already made."""
    return max(c.completion_time for c in completions)


def fired(state: CompletionState) -> CompletionState:
    """The state after a firing: every monitored job needs a new completion."""
    return replace(state, pending={})
