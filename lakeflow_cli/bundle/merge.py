"""How a target's overrides merge into the bundle, as the Databricks CLI merges them: mappings
merge key by key, sequences are appended, and then the job arrays that have keys (tasks by
task_key, job_clusters by job_cluster_key, parameters by name, environments by environment_key)
fold entries with the same key into one, the later one's fields winning."""

from lakeflow_cli.bundle.located import Mapping, Sequence, copy, where

KEYED_JOB_ARRAYS = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "parameters": "name",
    "environments": "environment_key",
}


def merge(base, override):
    """``override`` merged over ``base`` (neither is changed)."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = copy(base)
        for key, value in override.items():
            if key in result:
                result.set(key, merge(result[key], value), where(override, key))
            else:
                result.set(key, copy(value), where(override, key))
        return result
    if isinstance(base, list) and isinstance(override, list):
        result = copy(base)
        for index, item in enumerate(override):
            result.add(copy(item), where(override, index))
        return result
    return copy(override)


def fold_keyed_arrays(job):
    """Entries of a job's keyed arrays that share a key become one (later fields win)."""
    for array_name, key_name in KEYED_JOB_ARRAYS.items():
        items = job.get(array_name)
        if not isinstance(items, list):
            continue
        folded = Sequence(location=getattr(items, "location", None))
        position = {}
        for index, item in enumerate(items):
            key = item.get(key_name) if isinstance(item, dict) else None
            if key is not None and key in position:
                at = position[key]
                folded[at] = merge(folded[at], item)
            else:
                if key is not None:
                    position[key] = len(folded)
                folded.add(item, where(items, index))
        if isinstance(job, Mapping):
            job.set(array_name, folded, job.where(array_name))
        else:
            job[array_name] = folded
    return job
