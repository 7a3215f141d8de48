"""jobs/update: the settings after `fields_to_remove` and `new_settings` are applied."""

import copy

from .checker import Problem, SettingsInvalid

_KEYED_LISTS = {"tasks": "task_key", "job_clusters": "job_cluster_key"}


def _merge_by_key(current: list, incoming: list, key_field: str) -> list:
    merged = list(current)
    position = {item.get(key_field): i for i, item in enumerate(merged)
                if isinstance(item, dict) and isinstance(item.get(key_field), str)}
    for item in incoming:
        key = item.get(key_field) if isinstance(item, dict) else None
        if isinstance(key, str) and key in position:
            merged[position[key]] = item
        else:
            if isinstance(key, str):
                position[key] = len(merged)
            merged.append(item)
    return merged


def merge_update(settings: dict, new_settings: dict, fields_to_remove: list[str]) -> dict:
    """The settings after jobs/update: removals first, then `new_settings` merged in.

    Removing first lets one call drop `tasks/x` and add a fresh task `x`. The result
    is not validated; pass it to `validate_job_settings`.
    """
    result = copy.deepcopy(settings)
    problems = []
    for i, entry in enumerate(fields_to_remove):
        path = f"fields_to_remove[{i}]"
        if not isinstance(entry, str):
            problems.append(Problem(path, "must be a string"))
            continue
        field_name, _, key = entry.partition("/")
        if key and field_name in _KEYED_LISTS:
            key_field = _KEYED_LISTS[field_name]
            items = result.get(field_name) or []
            kept = [item for item in items
                    if not (isinstance(item, dict) and item.get(key_field) == key)]
            if len(kept) == len(items):
                problems.append(Problem(path, f"there is no {key_field} '{key}' to remove"))
            result[field_name] = kept
        elif key:
            problems.append(Problem(path, "only tasks/<task_key> and job_clusters/<key> "
                                          "may name an entry; other nested fields cannot be removed"))
        else:  # removing an absent field is done already (a retried "remove the schedule")
            result.pop(entry, None)
    if problems:
        raise SettingsInvalid(problems)

    for name, value in copy.deepcopy(new_settings).items():
        key_field = _KEYED_LISTS.get(name)
        if key_field and isinstance(value, list) and isinstance(result.get(name), list):
            result[name] = _merge_by_key(result[name], value, key_field)
        else:
            result[name] = value
    return result
