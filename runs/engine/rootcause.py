"""Why a run did not succeed: where the failure started and whether it happened before. Pure.

The shell (runs/rootcause.py) loads the latest attempt of every task and the failures of the
same task in earlier runs; this module decides which tasks are the origins (they failed or were
canceled themselves, as opposed to being skipped because of a task upstream), what each origin
took down with it, and whether two failures look alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runs.engine.planner import Graph, TaskStatus
from runs.engine.states import (
    FAILED_RESULTS,
    FINISHED_LIFE_CYCLES,
    RunLifeCycleState,
    RunResultState,
    is_finished,
)

L = RunLifeCycleState
R = RunResultState

# Run results that get an explanation; a run whose worker died (INTERNAL_ERROR) gets one too.
EXPLAINED_RESULTS = frozenset({R.FAILED, R.TIMEDOUT, R.CANCELED, R.SUCCESS_WITH_FAILURES})
# A task that ended with one of these failed by itself; UPSTREAM_FAILED only followed another.
OWN_FAILURE_RESULTS = FAILED_RESULTS - {R.UPSTREAM_FAILED}
# What a failed or canceled origin leaves behind in the tasks below it.
SKIPPED_BECAUSE = {"failed": R.UPSTREAM_FAILED, "canceled": R.UPSTREAM_CANCELED}

# Colour codes and cursor moves that task output often carries.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# "ValueError: boom", "py4j.protocol.Py4JJavaError: ...", "KeyboardInterrupt".
_EXCEPTION = re.compile(
    r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault|Warning))(?::|$)"
)
_ERROR_LINE_CHARS = 500


def is_explained(life_cycle_state: str, result_state: str | None) -> bool:
    """Does a run in this state get a root-cause explanation? Only finished runs that did not succeed."""
    if life_cycle_state == L.INTERNAL_ERROR:
        return True
    return life_cycle_state in FINISHED_LIFE_CYCLES and result_state in EXPLAINED_RESULTS


def failed_on_its_own(status: TaskStatus) -> bool:
    """The task's own code, its timeout or its worker failed: it is not merely downstream of one."""
    if status.life_cycle_state == L.INTERNAL_ERROR:
        return True
    return is_finished(status.life_cycle_state) and status.result_state in OWN_FAILURE_RESULTS


def canceled_on_its_own(status: TaskStatus) -> bool:
    return status.life_cycle_state == L.TERMINATED and status.result_state == R.CANCELED


@dataclass(frozen=True)
class Origin:
    task_key: str
    kind: str  # "failed" or "canceled"
    downstream_skipped: tuple[str, ...] = ()  # below it, and skipped UPSTREAM_FAILED / UPSTREAM_CANCELED


def find_origins(graph: Graph, statuses: Mapping[str, TaskStatus]) -> list[Origin]:
    """The tasks where the trouble started, in the graph's order: failures first, then cancels.

    Tasks that only became UPSTREAM_FAILED or UPSTREAM_CANCELED are never origins; they are
    listed under the origin(s) above them. A task missing from the graph (a repair moved the
    run to a version without it) can still be an origin, with nothing below it.
    """
    order = [node.task_key for node in graph.nodes]
    order += [key for key in statuses if key not in graph.by_key]
    kinds = {}
    for key in order:
        status = statuses.get(key)
        if status is None:
            continue
        if failed_on_its_own(status):
            kinds[key] = "failed"
        elif canceled_on_its_own(status):
            kinds[key] = "canceled"
    origins = []
    for kind in ("failed", "canceled"):
        for key in (k for k in order if kinds.get(k) == kind):
            below = graph.descendants([key]) if key in graph.by_key else set()
            skipped = tuple(
                k for k in order
                if k in below and statuses.get(k) is not None and statuses[k].result_state == SKIPPED_BECAUSE[kind]
            )
            origins.append(Origin(key, kind, skipped))
    return origins


# --- is it the same failure as before? -------------------------------------------------------


def clean(line: str) -> str:
    """A line of output as a person reads it: no colour codes, no trailing blanks."""
    return _ANSI.sub("", line).rstrip()


def error_line(text: str) -> str:
    """The first non-blank line of an error message, cleaned and cut to a readable length."""
    for line in (text or "").splitlines():
        line = clean(line).strip()
        if line:
            return line[:_ERROR_LINE_CHARS]
    return ""


def exception_type(error: str, trace: str = "") -> str | None:
    """The exception class named by the error's first line or the end of its traceback."""
    match = _EXCEPTION.match(error_line(error))
    if match:
        return match.group(1)
    tail = [clean(line).strip() for line in (trace or "").splitlines()[-10:]]
    for line in reversed([line for line in tail if line]):
        match = _EXCEPTION.match(line)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class Failure:
    result_state: str
    line: str
    exception: str | None = None


def failure_of(result_state: str, error: str, trace: str = "") -> Failure:
    return Failure(result_state, error_line(error), exception_type(error, trace))


def same_failure(a: Failure, b: Failure) -> bool:
    """Same result, and the same first error line or the same exception type."""
    if a.result_state != b.result_state:
        return False
    return bool(a.line and a.line == b.line) or bool(a.exception and a.exception == b.exception)


# --- logs and parameters -----------------------------------------------------------------------


def last_lines(text: str, count: int, *, truncated: bool = False) -> list[str]:
    """The last `count` lines of a log tail, trailing blank lines dropped.

    When the tail was cut from a longer log its first line is only a piece, so it goes.
    """
    lines = text.splitlines()
    if truncated and lines:
        lines = lines[1:]
    lines = [clean(line) for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-count:] if count > 0 else []


def _values(parameters: Sequence[Mapping]) -> dict:
    return {
        p["name"]: p.get("value", p.get("default"))
        for p in parameters or ()
        if isinstance(p, Mapping) and "name" in p
    }


def parameter_changes(before: Sequence[Mapping], after: Sequence[Mapping]) -> list[dict]:
    """[{name, before, after}] for job parameters whose value differs; None where one side lacks it.

    Parameters are the run's [{name, default, value}] list; the order is the later run's, then
    the ones it no longer has.
    """
    old, new = _values(before), _values(after)
    names = list(new) + [name for name in old if name not in new]
    return [
        {"name": name, "before": old.get(name), "after": new.get(name)}
        for name in names
        if name not in old or name not in new or old[name] != new[name]
    ]
