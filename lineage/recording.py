"""Write what one attempt read and wrote: its Edges, the Accesses they update, its column
edges and gaps. Idempotent (unique rows, conflicts ignored): a reaction that runs twice, or an
OpenLineage client that sends an event twice, records it once."""

from lineage.models import Access, ColumnEdge, Dataset, Edge, Gap


def datasets_named(names):
    """{name: Dataset} for DatasetNames, created where new (two writers may race: both survive)."""
    wanted = {found.name: found for found in names}
    existing = {d.name: d for d in Dataset.objects.filter(name__in=wanted)}
    missing = [Dataset(name=name, kind=found.kind) for name, found in wanted.items() if name not in existing]
    if missing:
        Dataset.objects.bulk_create(missing, ignore_conflicts=True)
        existing.update({d.name: d for d in Dataset.objects.filter(name__in=[d.name for d in missing])})
    return existing


def record_accesses(attempt, accesses, source, now):
    """accesses: [(DatasetName, direction, columns or None, row_count or None)]."""
    if not accesses:
        return
    run = attempt.run
    datasets = datasets_named(name for name, *_ in accesses)
    Edge.objects.bulk_create([
        Edge(dataset=datasets[name.name], direction=direction, source=source, task_run_id=attempt.id,
             run_id=run.id, job_id=run.job_id, task_key=attempt.task_key, columns=columns,
             row_count=row_count, at=now)
        for name, direction, columns, row_count in accesses], ignore_conflicts=True)
    if run.job_id is None:
        return
    for direction in {direction for _, direction, *_ in accesses}:
        ids = {datasets[name.name].id for name, d, *_ in accesses if d == direction}
        note_accesses(ids, direction, run.job_id, attempt.task_key, now, run.id, attempt.id)


def note_accesses(dataset_ids, direction, job_id, task_key, now, run_id=None, task_run_id=None):
    Access.objects.bulk_create([Access(dataset_id=dataset_id, direction=direction, job_id=job_id, task_key=task_key)
                                for dataset_id in dataset_ids], ignore_conflicts=True)
    Access.objects.filter(dataset_id__in=dataset_ids, direction=direction, job_id=job_id, task_key=task_key).update(
        last_at=now, last_run_id=run_id, last_task_run_id=task_run_id)


def record_columns(attempt, links, now):
    """links: [(target DatasetName, target column, source DatasetName, source column)]."""
    if not links:
        return
    datasets = datasets_named([link[0] for link in links] + [link[2] for link in links])
    ColumnEdge.objects.bulk_create([
        ColumnEdge(target=datasets[target.name], target_column=target_column, source=datasets[source.name],
                   source_column=source_column, task_run_id=attempt.id, run_id=attempt.run_id,
                   job_id=attempt.run.job_id, at=now)
        for target, target_column, source, source_column in links], ignore_conflicts=True)


def record_gap(attempt, message, now):
    if not Gap.objects.filter(task_run_id=attempt.id, message=message).exists():
        Gap.objects.create(task_run_id=attempt.id, run_id=attempt.run_id, message=message, at=now)
