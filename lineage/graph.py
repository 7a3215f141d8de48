"""Reading lineage: how far up and down a dataset reaches (recursive SQL over Access rows, the
same on SQLite and Postgres), the graph around it with a node cap, a table's writers, readers,
freshness, row counts and columns, and the shapes of Databricks' lineage API and system tables.

One step of the walk goes from a dataset to the datasets the same task wrote after reading it
(a job's trigger counts as reading for every task of its job): upstream walks it backwards.
"""

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Max, Q

from jobs.models import Job
from lineage.models import Access, ColumnEdge, Dataset, Direction, Edge
from runs.engine.states import RunResultState as R

MAX_DEPTH = 10
NODE_CAP = 150

_STEP = {
    # from the reached dataset (r) through the same task's (or job trigger's) other direction (w)
    "downstream": ("read", "write"),
    "upstream": ("write", "read"),
}


def reach(dataset_ids, direction, depth):
    """{dataset id: distance} of the datasets within `depth` steps (the start ones at 0)."""
    if not dataset_ids:
        return {}
    depth = max(0, min(int(depth), MAX_DEPTH))
    near, far = _STEP[direction]
    table = Access._meta.db_table
    # Postgres types the recursion by its first rows: an untyped parameter would be an integer.
    starts = " UNION ".join(["SELECT CAST(%s AS BIGINT), 0"] * len(dataset_ids))
    # A trigger access (task_key '', the least key in any collation) reads for every task of its
    # job. The range on task_key lets both databases walk the (job_id, task_key) index of the job
    # instead of building a temporary one per query; the OR then picks the task.
    same_task = ("w.task_key >= r.task_key AND (w.task_key = r.task_key OR r.task_key = '')"
                 if direction == "downstream" else
                 "w.task_key <= r.task_key AND (w.task_key = r.task_key OR w.task_key = '')")
    sql = f"""
        WITH RECURSIVE reached(dataset_id, depth) AS (
            {starts}
            UNION
            SELECT w.dataset_id, reached.depth + 1
            FROM reached
            JOIN {table} r ON r.dataset_id = reached.dataset_id AND r.direction = %s
            JOIN {table} w ON w.job_id = r.job_id AND {same_task} AND w.direction = %s
            WHERE {few_rows("reached.depth < %s")}
        )
        SELECT dataset_id, MIN(depth) FROM reached GROUP BY dataset_id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*dataset_ids, near, far, depth])
        return dict(cursor.fetchall())


def few_rows(condition):
    """SQLite runs a recursive step once per row it reached; with ANALYZE statistics its planner
    expects many and builds a Bloom filter over the whole Access table every time (O(table) per
    step: 7 ms instead of 0.02 ms at 22,000 Accesses). likelihood() tells it the truth."""
    return f"likelihood({condition}, 0.0000001)" if connection.vendor == "sqlite" else condition


@dataclass
class Graph:
    datasets: dict = field(default_factory=dict)  # id -> Dataset
    tasks: dict = field(default_factory=dict)  # (job_id, task_key) -> {"job": Job or None}
    edges: set = field(default_factory=set)  # ("dataset", id, "task", (job, key)) / ("task", key, "dataset", id)
    job_links: set = field(default_factory=set)  # (parent job id, child job id): run_job_task
    left_out: int = 0  # datasets past the node cap


def graph_around(dataset_ids, depth=2, cap=NODE_CAP, jobs=None):
    """The datasets within `depth` up and down of these, the tasks between them, at most `cap`
    datasets (nearest first). `jobs`: the jobs whose tasks may be shown (all when None); the
    tasks of others are left out, as a deleted job's are."""
    distance = {}
    for direction in ("upstream", "downstream"):
        for dataset_id, d in reach(list(dataset_ids), direction, depth).items():
            distance[dataset_id] = min(d, distance.get(dataset_id, d))
    ordered = sorted(distance, key=lambda i: (distance[i], i))
    return _graph_of(ordered[:cap], left_out=max(0, len(ordered) - cap), jobs=jobs)


def whole_graph(cap=NODE_CAP, search="", jobs=None):
    """The most recently touched datasets (matching `search`), with the tasks between them."""
    datasets = Dataset.objects.all()
    if search:
        datasets = datasets.filter(name__icontains=search)
    newest = (Access.objects.filter(dataset__in=datasets).values("dataset_id")
              .annotate(last=Max("last_at")).order_by("-last", "dataset_id"))
    ids = [row["dataset_id"] for row in newest[:cap + 1]]
    return _graph_of(ids[:cap], left_out=max(0, datasets.count() - cap), jobs=jobs)


def _graph_of(dataset_ids, left_out, jobs=None):
    graph = Graph(left_out=left_out)
    graph.datasets = Dataset.objects.in_bulk(dataset_ids)
    accesses = list(Access.objects.filter(dataset_id__in=dataset_ids)
                    .values_list("dataset_id", "direction", "job_id", "task_key"))
    jobs = (Job.objects if jobs is None else jobs).select_related("current_version").in_bulk(
        {job_id for _, _, job_id, _ in accesses})
    for dataset_id, direction, job_id, task_key in accesses:
        if job_id not in jobs:  # a deleted job, or one the caller may not view
            continue
        task = (job_id, task_key)
        graph.tasks[task] = {"job": jobs[job_id]}
        graph.edges.add(("dataset", dataset_id, "task", task) if direction == Direction.READ
                        else ("task", task, "dataset", dataset_id))
    for job in jobs.values():
        for child in run_job_children(job):
            if child in jobs:
                graph.job_links.add((job.id, child))
    return graph


def run_job_children(job):
    settings = job.settings
    return {task["run_job_task"].get("job_id") for task in (settings or {}).get("tasks") or []
            if isinstance(task.get("run_job_task"), dict)}


# --- one table ---------------------------------------------------------------------------------


def accesses_of(dataset, jobs=None):
    """Its writers and readers: [{job, task_key, direction, last_at, last_run_id}], newest first,
    of `jobs` (all when None)."""
    rows = list(Access.objects.filter(dataset=dataset).order_by("-last_at"))
    jobs = (Job.objects if jobs is None else jobs).in_bulk({row.job_id for row in rows})
    rows = [row for row in rows if row.job_id in jobs]
    return [{"job": jobs.get(row.job_id), "job_id": row.job_id, "task_key": row.task_key, "direction": row.direction,
             "last_at": row.last_at, "last_run_id": row.last_run_id, "trigger": row.task_key == ""}
            for row in rows]


def of_jobs(edges, jobs):
    """Edges of `jobs` only (all when None): what a caller may see of a table's history."""
    if jobs is None:
        return edges
    return edges.filter(Q(job_id__isnull=True) | Q(job_id__in=jobs.values("id")))  # no job: from outside


def last_write(dataset, successful=True, jobs=None):
    """The newest write edge (by a successful attempt, unless asked otherwise) of `jobs`."""
    writes = of_jobs(Edge.objects.filter(dataset=dataset, direction=Direction.WRITE), jobs).select_related("task_run")
    if successful:
        writes = writes.filter(task_run__result_state=R.SUCCESS)
    return writes.order_by("-at", "-id").first()


def row_counts(dataset, limit=50, jobs=None):
    """[(at, rows, run id)] of its writes (by `jobs`) that reported a row count, oldest first."""
    rows = (of_jobs(Edge.objects.filter(dataset=dataset, direction=Direction.WRITE, row_count__isnull=False), jobs)
            .order_by("-at", "-id").values_list("at", "row_count", "run_id")[:limit])
    return list(reversed(rows))


def column_sources(dataset):
    """{column: [(source dataset name, source column)]} of the columns whose origin is known."""
    found = {}
    rows = (ColumnEdge.objects.filter(target=dataset).values_list("target_column", "source__name", "source_column")
            .distinct().order_by("target_column", "source__name", "source_column"))
    for column, source, source_column in rows:
        found.setdefault(column, []).append((source, source_column))
    return found


def downstream_impact(dataset, cap=NODE_CAP, jobs=None):
    """The datasets, tasks and jobs below it, nearest first; past `cap` datasets only counted
    ("more"), so a root table of a big graph answers as fast as a leaf."""
    below = reach([dataset.id], "downstream", MAX_DEPTH)
    below.pop(dataset.id, None)
    nearest = sorted(below, key=lambda i: (below[i], i))
    graph = _graph_of([dataset.id, *nearest[:cap]], left_out=0, jobs=jobs)
    readers = {task for kind, _, _, task in graph.edges if kind == "dataset"}
    jobs = {job_id for job_id, _ in readers}
    return {"datasets": [graph.datasets[i] for i in nearest[:cap] if i in graph.datasets],
            "tasks": sorted(readers, key=str), "jobs": sorted(jobs), "more": max(0, len(nearest) - cap)}
