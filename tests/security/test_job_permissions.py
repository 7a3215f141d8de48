"""The permission matrix: every API endpoint, page, POST and the websocket of a job, walked by a
user at each level (none, CAN_VIEW, CAN_MANAGE_RUN, CAN_MANAGE through a group, IS_OWNER, and an
admin), each allowed exactly where the rule (jobs/spec/access.py) says and refused elsewhere."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from jobs.models import ADMINS_GROUP, ApiToken, Job, JobPermission, JobVersion
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.models import Run, TaskRun
from runs.routing import websocket_urlpatterns
from tests.dashboard.conftest import make_job

LEVELS = ["none", "view", "manage_run", "manage", "owner", "admin"]
RANK = {"none": 0, "view": 1, "manage_run": 2, "manage": 3, "owner": 3, "admin": 3}
NEEDS = {"view": 1, "logs": 2, "run": 2, "manage": 3}
DIRECT_GRANTS = {"view": "CAN_VIEW", "manage_run": "CAN_MANAGE_RUN"}
VIEWERS = [level for level in LEVELS if RANK[level] >= 1]


class World:
    """A job owned by olga with a failed run (repairable) and a queued one (cancelable), and the
    user who walks it at `level`."""

    def __init__(self, level, client, tmp_path):
        users = get_user_model().objects
        self.olga = users.create_user("olga", password="pw")
        self.job = make_job(self.olga, max_concurrent_runs=1)
        self.failed, _ = create_run(self.job, creator=self.olga)
        first = TaskRun.objects.get(run=self.failed)
        log = tmp_path / "attempt.log"
        log.write_text("the task's own words\n")
        TaskRun.objects.filter(id=first.id).update(log_path=str(log))
        finish_attempt(first.id, attempt_ended("FAILED"))
        self.attempt = TaskRun.objects.get(id=first.id)
        self.active, _ = create_run(self.job, creator=self.olga)
        self.level = level
        if level == "owner":
            self.user = self.olga
        else:
            self.user = users.create_user(f"u-{level}", password="pw")
            if level == "admin":
                self.user.groups.add(Group.objects.get_or_create(name=ADMINS_GROUP)[0])  # flushed by transactional tests
            elif level == "manage":  # through a group, as teams grant it
                team = Group.objects.create(name="data-eng")
                self.user.groups.add(team)
                JobPermission.objects.create(job=self.job, group=team, level="CAN_MANAGE")
            elif level != "none":
                JobPermission.objects.create(job=self.job, user=self.user, level=DIRECT_GRANTS[level])
        self.token = ApiToken.issue(self.user)[1]
        self.client = client
        self.client.force_login(self.user)

    def api(self, method, path, body=None, **query):
        headers = {"Authorization": f"Bearer {self.token}"}
        if method == "GET":
            return self.client.get(path, query, headers=headers)
        return self.client.generic(method, path, json.dumps(body or {}), content_type="application/json",
                                   headers=headers)


@pytest.fixture(params=LEVELS)
def world(request, db, client, held_broker, tmp_path):
    return World(request.param, client, tmp_path)


@pytest.fixture(params=VIEWERS)
def viewer_world(request, db, client, held_broker, tmp_path):
    """The levels that may view the job: the pages open, and what they show differs."""
    return World(request.param, client, tmp_path)


def allowed(world, need):
    return RANK[world.level] >= NEEDS[need]


API_CALLS = [
    # (what it needs, method, path, body or query); {job}, {run}, {active}, {attempt} filled in
    ("view", "GET", "/api/2.2/jobs/get", {"job_id": "{job}"}),
    ("view", "GET", "/api/2.1/jobs/get", {"job_id": "{job}"}),
    ("view", "GET", "/api/2.2/jobs/runs/get", {"run_id": "{run}"}),
    ("view", "GET", "/api/2.2/jobs/runs/get", {"run_id": "{attempt}"}),
    ("view", "GET", "/api/2.2/jobs/runs/get-output", {"run_id": "{attempt}"}),
    ("view", "GET", "/api/2.2/jobs/runs/export", {"run_id": "{run}"}),
    ("view", "GET", "/api/2.2/jobs/runs/events", {"run_id": "{run}"}),
    ("view", "GET", "/api/2.2/jobs/runs/list", {"job_id": "{job}"}),
    ("view", "GET", "/api/2.0/permissions/jobs/{job}", {}),
    ("view", "GET", "/api/2.0/permissions/jobs/{job}/permissionLevels", {}),
    ("run", "POST", "/api/2.2/jobs/run-now", {"job_id": "{job}"}),
    ("run", "POST", "/api/2.2/jobs/runs/cancel", {"run_id": "{active}"}),
    ("run", "POST", "/api/2.2/jobs/runs/cancel-all", {"job_id": "{job}"}),
    ("run", "POST", "/api/2.2/jobs/runs/repair", {"run_id": "{run}", "rerun_all_failed_tasks": True}),
    ("manage", "POST", "/api/2.2/jobs/update", {"job_id": "{job}", "new_settings": {"name": "renamed"}}),
    ("manage", "POST", "/api/2.2/jobs/reset", {"job_id": "{job}", "new_settings": {"name": "reset"}}),
    ("manage", "POST", "/api/2.2/jobs/runs/delete", {"run_id": "{run}"}),
    ("manage", "PATCH", "/api/2.0/permissions/jobs/{job}", {"access_control_list": []}),
    ("manage", "PUT", "/api/2.0/permissions/jobs/{job}", {"access_control_list": []}),
    ("manage", "POST", "/api/2.2/jobs/delete", {"job_id": "{job}"}),
]


def filled(world, value):
    names = {"{job}": world.job.id, "{run}": world.failed.id, "{active}": world.active.id,
             "{attempt}": world.attempt.id}
    if isinstance(value, dict):
        return {key: filled(world, item) for key, item in value.items()}
    if isinstance(value, str):
        for name, number in names.items():
            if value == name:
                return number
            value = value.replace(name, str(number))
    return value


@pytest.mark.parametrize("need, method, path, body", API_CALLS, ids=[f"{m} {p}" for _, m, p, _ in API_CALLS])
def test_each_api_endpoint_allows_exactly_the_levels_the_rule_says(world, need, method, path, body):
    path, body = filled(world, path), filled(world, body)
    response = world.api(method, path, body) if method != "GET" else world.api("GET", path, **body)
    if allowed(world, need):
        assert response.status_code == 200, (world.level, response.content)
    else:
        assert response.status_code == 403, (world.level, response.content)
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert world.user.username in response.json()["message"]
        assert f"job {world.job.id}" in response.json()["message"]


@pytest.mark.parametrize("level", ["none", "view", "manage_run"])
def test_a_refused_change_changes_nothing(level, db, client, held_broker, tmp_path):
    world = World(level, client, tmp_path)
    before = (list(JobVersion.objects.filter(job=world.job).values_list("number", flat=True)),
              list(JobPermission.objects.filter(job=world.job).values_list("id", "level")),
              Run.objects.filter(job=world.job).count())
    world.api("POST", "/api/2.2/jobs/reset", {"job_id": world.job.id, "new_settings": {"name": "x"}})
    world.api("PUT", f"/api/2.0/permissions/jobs/{world.job.id}", {"access_control_list": []})
    world.api("POST", "/api/2.2/jobs/run-now", {"job_id": world.job.id})
    after = (list(JobVersion.objects.filter(job=world.job).values_list("number", flat=True)),
             list(JobPermission.objects.filter(job=world.job).values_list("id", "level")),
             Run.objects.filter(job=world.job).count())
    assert after[:2] == before[:2]
    assert after[2] == before[2] + (1 if level == "manage_run" else 0)  # manage-run may run it


def test_lists_show_the_job_and_its_runs_only_to_who_may_view_it(world):
    listed = world.api("GET", "/api/2.2/jobs/list").json().get("jobs", [])
    runs = world.api("GET", "/api/2.2/jobs/runs/list").json().get("runs", [])
    page = world.client.get("/").content.decode()
    runs_page = world.client.get("/runs/").content.decode()
    visible = allowed(world, "view")
    assert ([j["job_id"] for j in listed] == [world.job.id]) is visible
    assert (sorted(r["run_id"] for r in runs) == sorted([world.failed.id, world.active.id])) is visible
    assert (not runs) is (not visible)
    assert (f"/jobs/{world.job.id}/" in page) is visible
    assert (f"/jobs/{world.job.id}/runs/{world.failed.id}/" in runs_page) is visible


def test_get_output_carries_the_log_only_for_manage_run_and_up(viewer_world):
    world = viewer_world
    assert world.attempt.log_path  # the failed attempt has a log to show or hide
    output = world.api("GET", "/api/2.2/jobs/runs/get-output", run_id=world.attempt.id).json()
    assert ("logs" in output) is allowed(world, "logs")


PAGES = [
    ("view", "/jobs/{job}/"),
    ("view", "/jobs/{job}/versions/"),
    ("view", "/jobs/{job}/runs/{run}/"),
    ("view", "/runs/{run}/state/"),
    ("view", "/task-runs/{attempt}/"),
    ("view", "/lineage/runs/{run}/card/"),
    ("view", "/lineage/runs/{run}/upstream/"),
    ("view", "/lineage/jobs/{job}/card/"),
    ("logs", "/task-runs/{attempt}/log/"),
    ("manage", "/jobs/{job}/edit/"),
    ("manage", "/jobs/{job}/source/"),
]


@pytest.mark.parametrize("need, path", PAGES, ids=[p for _, p in PAGES])
def test_each_page_allows_exactly_the_levels_the_rule_says(world, need, path):
    response = world.client.get(filled(world, path))
    assert response.status_code == (200 if allowed(world, need) else 403), (world.level, path)


POSTS = [
    ("run", "/jobs/{job}/run-now/", {}),
    ("run", "/runs/{active}/cancel/", {}),
    ("run", "/task-runs/{attempt}/cancel/", {}),
    ("run", "/runs/{run}/repair/", {}),
    ("manage", "/jobs/{job}/source/", {"format": "yaml", "source": "name: changed\ntasks:\n- task_key: x\n"
                                                                    "  shell_command_task: {command: id}\n"}),
    ("manage", "/jobs/{job}/permissions/", {"principal": "olga", "kind": "user_name", "level": "CAN_VIEW",
                                            "action": "grant"}),
]


@pytest.mark.parametrize("need, path, form", POSTS, ids=[p for _, p, _ in POSTS])
def test_each_dashboard_post_allows_exactly_the_levels_the_rule_says(world, need, path, form):
    response = world.client.post(filled(world, path), form)
    if allowed(world, need):
        assert response.status_code == 302, (world.level, response.content[:500])
    else:
        assert response.status_code == 403, (world.level, response.status_code)


def test_the_buttons_shown_are_the_ones_the_user_may_use(viewer_world):
    world = viewer_world
    job_page = world.client.get(f"/jobs/{world.job.id}/").content.decode()
    run_page = world.client.get(f"/jobs/{world.job.id}/runs/{world.failed.id}/").content.decode()
    panel = world.client.get(f"/task-runs/{world.attempt.id}/?fragment=1").content.decode()
    assert ('id="run-now"' in job_page) is allowed(world, "run")
    assert ('id="edit-job"' in job_page) is allowed(world, "manage")
    assert ('id="permissions-save"' in job_page) is allowed(world, "manage")
    assert ('id="repair-run"' in run_page) is allowed(world, "run")
    assert ('id="cancel-run"' in run_page) is allowed(world, "run")
    assert ('id="task-log"' in panel) is allowed(world, "logs")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("level", LEVELS)
def test_the_run_page_websocket_is_refused_to_who_may_not_view_the_run(level, client, held_broker, tmp_path):
    world = World(level, client, tmp_path)

    async def scenario():
        socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{world.failed.id}/")
        socket.scope["user"] = world.user
        connected, code = await socket.connect()
        if allowed(world, "view"):
            assert connected
            snapshot = await socket.receive_json_from(timeout=10)
            assert [n["key"] for n in snapshot["nodes"]] == ["hello"]
            await socket.disconnect()
        else:
            assert not connected and code == 4403

    async_to_sync(scenario)()


def test_a_job_made_in_the_dashboard_is_owned_by_its_maker(browser, user):
    source = "name: mine\ntasks:\n- task_key: x\n  shell_command_task: {command: id}\n"
    assert browser.post("/jobs/new/source/", {"format": "yaml", "source": source}).status_code == 302
    job = Job.objects.get(name="mine")
    assert list(JobPermission.objects.filter(job=job).values_list("user__username", "level")) == [
        (user.username, "IS_OWNER")]


@pytest.mark.django_db(transaction=True)
def test_an_open_socket_is_closed_once_its_grant_is_taken_away(client, held_broker, tmp_path):
    from runs import dispatch

    world = World("view", client, tmp_path)

    async def scenario():
        socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{world.active.id}/")
        socket.scope["user"] = world.user
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=10)
        await sync_to_async(JobPermission.objects.filter(job=world.job, user=world.user).delete)()
        await sync_to_async(dispatch.cancel_run)(world.active.id)  # the run moves on: a snapshot is due
        closed = await socket.receive_output(timeout=10)
        assert closed == {"type": "websocket.close", "code": 4403}

    async_to_sync(scenario)()


def test_the_root_cause_shows_log_lines_only_to_who_may_read_logs(viewer_world):
    world = viewer_world
    page = world.client.get(f"/jobs/{world.job.id}/runs/{world.failed.id}/").content.decode()
    assert ("the task&#x27;s own words" in page) is allowed(world, "logs")


def test_a_run_id_is_not_redirected_to_its_job_for_who_may_not_view_it(world):
    response = world.client.get(f"/runs/{world.failed.id}/")
    if allowed(world, "view"):
        assert response.status_code == 302 and response["Location"] == f"/jobs/{world.job.id}/runs/{world.failed.id}/"
    else:
        assert response.status_code == 403
