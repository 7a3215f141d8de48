import copy

import pytest

from jobs.spec.checker import SettingsInvalid
from jobs.spec.update import merge_update


def task(key, path=None):
    return {"task_key": key, "notebook_task": {"notebook_path": path or f"/Jobs/{key}"}}


def cluster(key, workers=1):
    return {"job_cluster_key": key, "new_cluster": {"num_workers": workers}}


def nightly():
    return {
        "name": "nightly",
        "max_concurrent_runs": 1,
        "schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"},
        "tags": {"team": "data"},
        "tasks": [task("extract"), task("load")],
        "job_clusters": [cluster("small"), cluster("big", 8)],
    }


def test_top_level_fields_in_new_settings_replace_the_old_ones():
    result = merge_update(nightly(), {"name": "hourly", "tags": {"owner": "ann"}}, [])
    assert result["name"] == "hourly"
    assert result["tags"] == {"owner": "ann"}  # replaced, not merged
    assert result["max_concurrent_runs"] == 1


def test_a_task_with_a_known_key_replaces_that_task_in_place():
    result = merge_update(nightly(), {"tasks": [task("extract", "/Jobs/extract_v2")]}, [])
    assert result["tasks"] == [task("extract", "/Jobs/extract_v2"), task("load")]


def test_a_task_with_a_new_key_is_appended():
    result = merge_update(nightly(), {"tasks": [task("report"), task("load", "/v2")]}, [])
    assert [t["task_key"] for t in result["tasks"]] == ["extract", "load", "report"]
    assert result["tasks"][1] == task("load", "/v2")


def test_job_clusters_merge_by_job_cluster_key():
    result = merge_update(nightly(), {"job_clusters": [cluster("big", 16), cluster("gpu")]}, [])
    assert result["job_clusters"] == [cluster("small"), cluster("big", 16), cluster("gpu")]


def test_fields_to_remove_drops_top_level_fields_tasks_and_clusters():
    result = merge_update(nightly(), {}, ["schedule", "tasks/extract", "job_clusters/small"])
    assert "schedule" not in result
    assert result["tasks"] == [task("load")]
    assert result["job_clusters"] == [cluster("big", 8)]


def test_removal_happens_before_the_merge_so_a_task_can_be_recreated():
    result = merge_update(nightly(), {"tasks": [task("extract", "/fresh")]}, ["tasks/extract"])
    assert result["tasks"] == [task("load"), task("extract", "/fresh")]


def test_removing_something_that_does_not_exist_names_each_bad_entry():
    with pytest.raises(SettingsInvalid) as caught:
        merge_update(nightly(), {}, ["schedule", "trigger", "tasks/ghost", "job_clusters/none", "tags/team"])
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("fields_to_remove[2]", "there is no task_key 'ghost' to remove"),
        ("fields_to_remove[3]", "there is no job_cluster_key 'none' to remove"),
        ("fields_to_remove[4]", "only tasks/<task_key> and job_clusters/<key> may name an entry; "
                                "other nested fields cannot be removed"),
    ]


def test_removing_an_absent_top_level_field_does_nothing_so_a_retried_removal_succeeds():
    once = merge_update(nightly(), {}, ["schedule"])
    assert "schedule" not in once
    assert merge_update(once, {}, ["schedule"]) == once


def test_merge_update_returns_a_new_dict_and_leaves_its_inputs_alone():
    settings, new_settings = nightly(), {"tasks": [task("report")], "tags": {"a": "b"}}
    before = (copy.deepcopy(settings), copy.deepcopy(new_settings))
    result = merge_update(settings, new_settings, ["schedule"])
    result["tasks"][2]["notebook_task"]["notebook_path"] = "/changed"
    result["tags"]["a"] = "changed"
    assert (settings, new_settings) == before


def test_tasks_given_to_a_job_without_tasks_become_its_tasks():
    result = merge_update({"name": "empty"}, {"tasks": [task("a")]}, [])
    assert result["tasks"] == [task("a")]
