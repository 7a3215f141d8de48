"""What the lineage pages and cards show, read from the ORM: a table page's freshness, columns,
impact and gaps; a run's reads and writes per attempt; a job's tables. Every query is bounded."""

from jobs.models import Job
from lineage import graph
from lineage.models import Access, Direction, Edge, Gap
from runs.engine.states import SUCCESSFUL_RESULTS, is_finished
from runs.models import RunEvent, TaskRun

RECENT_WRITES = 20  # the attempts whose gaps a table page shows
EDGES_PER_RUN = 2000
ACCESSES_PER_JOB = 500


def freshness(dataset, jobs=None):
    """The last successful write, and the last write of any result when it is newer (flagged),
    by `jobs` (all when None)."""
    good = graph.last_write(dataset, jobs=jobs)
    newest = graph.last_write(dataset, successful=False, jobs=jobs)
    if newest is None or (good is not None and newest.id == good.id):
        newest = None
    return {"last_success": good, "newer_write": newest,
            "newer_failed": newest is not None and newest.task_run.result_state not in SUCCESSFUL_RESULTS}


def columns_of(dataset, last_success):
    """[(column, [(source dataset, source column)])]: the columns of its last write, with the
    upstream columns lineage knows, then any column known only from column lineage."""
    sources = graph.column_sources(dataset)
    names = list((last_success.columns if last_success else None) or [])
    names += [column for column in sources if column not in names]
    return [(column, sources.get(column, [])) for column in names]


def impact(dataset, jobs=None):
    """downstream_impact (of `jobs`, all when None) with the jobs loaded: {"datasets", "tasks":
    [(job, key)], "jobs"}."""
    found = graph.downstream_impact(dataset, jobs=jobs)
    jobs = Job.objects.in_bulk(set(found["jobs"]))
    return {"datasets": found["datasets"], "more": found["more"], "jobs": [jobs[i] for i in found["jobs"] if i in jobs],
            "tasks": [{"job_id": job_id, "job": jobs.get(job_id), "task_key": key} for job_id, key in found["tasks"]]}


def writer_gaps(dataset, jobs=None):
    """The "lineage unknown" gaps of the attempts (of `jobs`) that wrote it lately, newest first."""
    attempts = (graph.of_jobs(Edge.objects.filter(dataset=dataset, direction=Direction.WRITE), jobs).order_by("-at", "-id")
                .values_list("task_run_id", flat=True)[:RECENT_WRITES])
    return list(Gap.objects.filter(task_run_id__in=list(attempts)).select_related("task_run", "run")
                .order_by("-at", "-id")[:RECENT_WRITES])


def run_lineage(run):
    """[{"attempt", "edges", "gaps"}] per attempt of the run that read, wrote or missed anything."""
    edges = list(Edge.objects.filter(run=run).select_related("dataset")
                 .order_by("task_run_id", "direction", "dataset__name")[:EDGES_PER_RUN])
    gaps = list(Gap.objects.filter(run=run).order_by("id")[:EDGES_PER_RUN])
    found = {}
    for row, kind in [(edge, "edges") for edge in edges] + [(gap, "gaps") for gap in gaps]:
        found.setdefault(row.task_run_id, {"edges": [], "gaps": []})[kind].append(row)
    attempts = TaskRun.objects.filter(id__in=found).order_by("task_key", "for_each_key", "iteration", "attempt_number")
    return [{"attempt": attempt, **found[attempt.id]} for attempt in attempts]


def settling(run):
    """Is the run's lineage still to come? (Capture reacts to task.finished after its commit.)"""
    return not is_finished(run.life_cycle_state) or RunEvent.objects.filter(
        run=run, type="task.finished", reactions_pending=True).exists()


def job_tables(job):
    """The job's Access rows, trigger first, then by task and table."""
    rows = list(Access.objects.filter(job_id=job.id).select_related("dataset")
                .order_by("task_key", "direction", "dataset__name")[:ACCESSES_PER_JOB])
    return [{"access": row, "trigger": row.task_key == ""} for row in rows]
