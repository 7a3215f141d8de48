"""jobs/create, get, list, update, reset and delete."""

import time

from jobs.models import Job
from tests.api.conftest import create_job, shell_task


def chain(count):
    return [shell_task(f"t{i:03d}", depends_on=[f"t{i - 1:03d}"] if i else []) for i in range(count)]


def test_a_created_job_reads_back_with_its_settings_and_defaults(api, bob_api):
    before = int(time.time() * 1000)
    job_id = create_job(api, name="nightly", tasks=[shell_task("a")], tags={"team": "data"},
                        access_control_list=[{"user_name": "bob", "permission_level": "CAN_VIEW"}])
    job = api.get_ok("jobs/get", job_id=job_id)
    assert job["job_id"] == job_id
    assert job["creator_user_name"] == "alice"
    assert job["run_as_user_name"] == "alice"
    assert before - 1000 <= job["created_time"] <= int(time.time() * 1000)
    settings = job["settings"]
    assert settings["name"] == "nightly" and settings["tags"] == {"team": "data"}
    assert settings["max_concurrent_runs"] == 1
    assert settings["queue"] == {"enabled": True}
    assert settings["tasks"][0]["run_if"] == "ALL_SUCCESS"
    assert "access_control_list" not in settings
    assert "next_page_token" not in job


def test_api_2_1_jobs_do_not_queue_by_default(api):
    job_id = create_job(api.as_version("2.1"))
    assert api.get_ok("jobs/get", job_id=job_id)["settings"]["queue"] == {"enabled": False}


def test_listing_25_jobs_10_at_a_time_takes_3_pages_and_the_last_has_no_next_token(api):
    created = [create_job(api, name=f"job {i}") for i in range(25)]
    pages, token = [], None
    while True:
        params = {"limit": 10, **({"page_token": token} if token else {})}
        page = api.get_ok("jobs/list", **params)
        pages.append(page)
        token = page.get("next_page_token")
        if token is None:
            break
    assert [len(p["jobs"]) for p in pages] == [10, 10, 5]
    assert [p["has_more"] for p in pages] == [True, True, False]
    listed = [j["job_id"] for p in pages for j in p["jobs"]]
    assert listed == sorted(created, reverse=True)
    assert "prev_page_token" not in pages[0]
    back = api.get_ok("jobs/list", limit=10, page_token=pages[2]["prev_page_token"])
    assert [j["job_id"] for j in back["jobs"]] == [j["job_id"] for j in pages[1]["jobs"]]


def test_the_deprecated_offset_still_skips_jobs(api):
    created = [create_job(api, name=f"job {i}") for i in range(5)]
    page = api.get_ok("jobs/list", limit=2, offset=2)
    assert [j["job_id"] for j in page["jobs"]] == sorted(created, reverse=True)[2:4]


def test_list_limit_must_be_between_1_and_100(api):
    assert api.get("jobs/list", limit=0).status_code == 400
    assert api.get("jobs/list", limit=101).status_code == 400


def test_listing_by_name_is_exact_and_case_insensitive(api):
    wanted = create_job(api, name="Daily Load")
    create_job(api, name="Daily Load 2")
    page = api.get_ok("jobs/list", name="daily load")
    assert [j["job_id"] for j in page["jobs"]] == [wanted]


def test_list_leaves_tasks_out_unless_expand_tasks(api):
    create_job(api, tasks=chain(120))
    plain = api.get_ok("jobs/list")["jobs"][0]
    assert "tasks" not in plain["settings"] and plain["settings"]["name"] == "job"
    expanded = api.get_ok("jobs/list", expand_tasks="true")["jobs"][0]
    assert len(expanded["settings"]["tasks"]) == 100
    assert expanded["has_more"] is True


def test_a_job_with_250_tasks_reads_back_100_tasks_a_page(api):
    job_id = create_job(api, tasks=chain(250), parameters=[{"name": "day", "default": "today"}])
    first = api.get_ok("jobs/get", job_id=job_id)
    second = api.get_ok("jobs/get", job_id=job_id, page_token=first["next_page_token"])
    third = api.get_ok("jobs/get", job_id=job_id, page_token=second["next_page_token"])
    assert "next_page_token" not in third
    keys = [t["task_key"] for page in (first, second, third) for t in page["settings"]["tasks"]]
    assert keys == [f"t{i:03d}" for i in range(250)]
    # Every array is paged alike, so a client that concatenates pages gets each parameter once.
    assert [len(p["settings"]["parameters"]) for p in (first, second, third)] == [1, 0, 0]


def test_api_2_1_returns_all_tasks_at_once(api):
    job_id = create_job(api, tasks=chain(150))
    job = api.as_version("2.1").get_ok("jobs/get", job_id=job_id)
    assert len(job["settings"]["tasks"]) == 150
    assert "next_page_token" not in job


def test_update_merges_tasks_by_key_and_replaces_other_top_level_fields(api):
    job_id = create_job(api, name="before", tasks=[shell_task("a"), shell_task("b", "echo b")],
                        tags={"old": "1"})
    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {
        "name": "after", "tags": {"new": "2"}, "tasks": [shell_task("b", "echo changed"), shell_task("c")]}})
    settings = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert settings["name"] == "after" and settings["tags"] == {"new": "2"}
    assert [t["task_key"] for t in settings["tasks"]] == ["a", "b", "c"]
    assert settings["tasks"][1]["shell_command_task"]["command"] == "echo changed"
    assert Job.objects.get(id=job_id).versions.count() == 2


def test_update_removes_fields_and_tasks_named_in_fields_to_remove(api):
    job_id = create_job(api, tasks=[shell_task("a"), shell_task("b")], tags={"x": "y"})
    api.post_ok("jobs/update", {"job_id": job_id, "fields_to_remove": ["tags", "tasks/b"]})
    settings = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert "tags" not in settings
    assert [t["task_key"] for t in settings["tasks"]] == ["a"]


def test_update_refuses_a_merge_that_breaks_the_job_and_keeps_the_old_settings(api):
    job_id = create_job(api, tasks=[shell_task("a"), shell_task("b", depends_on=["a"])])
    response = api.post("jobs/update", {"job_id": job_id, "fields_to_remove": ["tasks/a"]})
    assert response.status_code == 400
    assert "tasks[0].depends_on[0].task_key" in response.json()["message"]
    response = api.post("jobs/update", {"job_id": job_id, "fields_to_remove": ["tasks/zzz"]})
    assert response.status_code == 400 and "zzz" in response.json()["message"]
    assert len(api.get_ok("jobs/get", job_id=job_id)["settings"]["tasks"]) == 2


def test_update_checks_the_types_of_its_own_fields(api):
    job_id = create_job(api)
    response = api.post("jobs/update", {"job_id": job_id, "fields_to_remove": "tags"})
    assert response.status_code == 400 and "fields_to_remove" in response.json()["message"]
    response = api.post("jobs/update", {"job_id": job_id, "new_settings": []})
    assert response.status_code == 400 and "new_settings" in response.json()["message"]


def test_reset_overwrites_every_setting(api):
    job_id = create_job(api, name="old", tags={"a": "b"}, tasks=[shell_task("a"), shell_task("b")])
    api.post_ok("jobs/reset", {"job_id": job_id, "new_settings": {"name": "new", "tasks": [shell_task("z")]}})
    settings = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert settings["name"] == "new" and "tags" not in settings
    assert [t["task_key"] for t in settings["tasks"]] == ["z"]


def test_reset_needs_new_settings(api):
    job_id = create_job(api)
    response = api.post("jobs/reset", {"job_id": job_id})
    assert response.status_code == 400 and "new_settings" in response.json()["message"]


def test_a_deleted_job_is_gone_from_get_and_list(api):
    kept, deleted = create_job(api, name="kept"), create_job(api, name="deleted")
    assert api.post_ok("jobs/delete", {"job_id": deleted}) == {}
    response = api.get("jobs/get", job_id=deleted)
    assert response.status_code == 404
    assert response.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Job {deleted} does not exist."}
    assert [j["job_id"] for j in api.get_ok("jobs/list")["jobs"]] == [kept]
    assert api.post("jobs/delete", {"job_id": deleted}).status_code == 404


def test_the_hidden_job_of_a_one_time_run_is_never_listed_or_shown(api, held_broker):
    run_id = api.post_ok("jobs/runs/submit", {"run_name": "once", "tasks": [shell_task("a")]})["run_id"]
    hidden = api.get_ok("jobs/runs/get", run_id=run_id)["job_id"]
    assert api.get_ok("jobs/list")["jobs"] == []
    assert api.get("jobs/get", job_id=hidden).status_code == 404
    assert api.post("jobs/run-now", {"job_id": hidden}).status_code == 404
