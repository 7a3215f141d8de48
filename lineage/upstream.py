"""Root cause upstream: for each failed task of a run, the datasets it read and, for each, whether
the write it read came from a failed attempt (then up through failed writers, across jobs, to the
first failure) or is older than usual.

Everything is judged as of when the reading attempt started: the write it read is the newest one
before that, and a table is stale if its age then was more than STALE_FACTOR times the median
interval between its last USUAL_WRITES successful writes (with at least MIN_WRITES of them).
"""

from itertools import pairwise
from statistics import median

from lineage.models import Access, Dataset, Direction, Edge
from runs.engine.rootcause import OWN_FAILURE_RESULTS
from runs.engine.states import SUCCESSFUL_RESULTS
from runs.models import TaskRun

MAX_HOPS = 10
STALE_FACTOR = 2
USUAL_WRITES = 10
MIN_WRITES = 3
FAILED_TASKS_SHOWN = 20
INPUTS_SHOWN = 50


def failed_inputs(run, now):
    """[{"attempt", "from_earlier_runs", "inputs": [assessment]}] per failed task of the run."""
    failed = (TaskRun.objects.filter(run=run, is_current=True, result_state__in=OWN_FAILURE_RESULTS)
              .select_related("run").order_by("task_key", "iteration")[:FAILED_TASKS_SHOWN])
    found = []
    for attempt in failed:
        datasets, from_earlier_runs = task_reads(attempt)
        found.append({"attempt": attempt, "from_earlier_runs": from_earlier_runs,
                      "inputs": [assess(dataset, attempt, now) for dataset in datasets[:INPUTS_SHOWN]]})
    return found


def task_reads(attempt):
    """(datasets, from earlier runs?): what the task read in this run; if nothing was captured,
    what it read before (its Access rows)."""
    ids = set(Edge.objects.filter(run_id=attempt.run_id, task_key=attempt.task_key, direction=Direction.READ)
              .values_list("dataset_id", flat=True))
    from_earlier_runs = not ids and attempt.run.job_id is not None
    if from_earlier_runs:
        ids = set(Access.objects.filter(job_id=attempt.run.job_id, task_key=attempt.task_key,
                                        direction=Direction.READ).values_list("dataset_id", flat=True))
    return list(Dataset.objects.filter(id__in=ids).order_by("name")), from_earlier_runs and bool(ids)


def assess(dataset, reader, now):
    """{"dataset", "write": the Edge it read or None, "failed_write": that Edge if it failed,
    "first_failures": [Edge], "stale": {...} or None}."""
    write = write_read_by(dataset, reader, now)
    failed = write if write is not None and is_failed(write) else None
    return {"dataset": dataset, "write": write, "failed_write": failed,
            "stale": staleness(dataset, started(reader, now)),
            "first_failures": first_failures(failed, now) if failed else []}


def write_read_by(dataset, reader, now):
    """The newest write of the dataset, whatever its result, by another attempt before the reader started."""
    return (Edge.objects.filter(dataset=dataset, direction=Direction.WRITE, at__lte=started(reader, now))
            .exclude(task_run_id=reader.id).select_related("task_run__run", "run__job", "dataset")
            .order_by("-at", "-id").first())


def is_failed(write):
    return write.task_run.result_state is not None and write.task_run.result_state not in SUCCESSFUL_RESULTS


def first_failures(failed_write, now):
    """The failed writes where the trouble starts: from this one, up through the inputs whose
    last write failed too, until a failed writer read nothing written by a failed attempt (or
    MAX_HOPS). Each attempt is visited once, so cycles end."""
    seen, frontier, origins, walked = {failed_write.task_run_id}, [failed_write], {}, []
    for _ in range(MAX_HOPS):
        if not frontier:
            break
        walked, following = frontier, []
        for write in frontier:
            datasets, _ = task_reads(write.task_run)
            upstream = [w for w in (write_read_by(d, write.task_run, now) for d in datasets)
                        if w is not None and is_failed(w)]
            if not upstream:  # nothing failed above it: the failure starts here
                origins[write.task_run_id] = write
            following += [w for w in upstream if w.task_run_id not in seen]
            seen.update(w.task_run_id for w in upstream)
        frontier = following
    # Where the walk stopped (MAX_HOPS, or a loop of failed writers): as far as we could tell.
    origins.update((write.task_run_id, write) for write in frontier or ([] if origins else walked))
    return sorted(origins.values(), key=lambda write: (write.at, write.id))


def staleness(dataset, as_of):
    """{"last_at", "age", "usual"} if the dataset was older than usual at `as_of`; else None."""
    rows = (Edge.objects.filter(dataset=dataset, direction=Direction.WRITE, at__lte=as_of,
                                task_run__result_state__in=SUCCESSFUL_RESULTS)
            .order_by("-at", "-id").values_list("task_run_id", "at")[:USUAL_WRITES * 3])
    newest = {}
    for task_run_id, at in rows:  # one time per attempt: an attempt may write it twice (SQL and declared)
        newest.setdefault(task_run_id, at)
    times = sorted(newest.values(), reverse=True)[:USUAL_WRITES]
    if len(times) < MIN_WRITES:
        return None
    usual = median(newer - older for newer, older in pairwise(times))
    age = as_of - times[0]
    if not usual or age <= usual * STALE_FACTOR:
        return None
    return {"last_at": times[0], "age": age, "usual": usual}


def started(attempt, now):
    return attempt.started_at or attempt.created_at or now
