"""The run page's websocket (channels' in-memory layer, the embedded default's): a signed-in
user gets a snapshot at once and a new one as soon as the run's events move on."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.models import TaskRun
from runs.routing import websocket_urlpatterns
from tests.dashboard.conftest import make_job

pytestmark = pytest.mark.django_db(transaction=True)


def connect(user, run_id):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{run_id}/")
    communicator.scope["user"] = user
    return communicator


def test_a_signed_in_socket_gets_the_snapshot_then_each_change(user, held_broker):
    job = make_job(user, tasks=[{"task_key": "a", "shell_command_task": {"command": "true"}},
                                {"task_key": "b", "shell_command_task": {"command": "true"},
                                 "depends_on": [{"task_key": "a"}]}])
    run, _ = create_run(job, creator=user)
    a = TaskRun.objects.get(run=run, task_key="a")

    async def scenario():
        socket = connect(user, run.id)
        connected, _ = await socket.connect()
        assert connected
        first = await socket.receive_json_from(timeout=5)
        assert [(n["key"], n["state"]) for n in first["nodes"]] == [("a", "pending"), ("b", "blocked")]
        await sync_to_async(finish_attempt)(a.id, attempt_ended("SUCCESS"))
        second = await socket.receive_json_from(timeout=5)
        assert second["event_id"] > first["event_id"]
        assert [(n["key"], n["state"]) for n in second["nodes"]] == [("a", "success"), ("b", "pending")]
        await socket.disconnect()

    async_to_sync(scenario)()


def test_an_anonymous_socket_is_refused(user, held_broker):
    run, _ = create_run(make_job(user), creator=user)

    async def scenario():
        socket = connect(AnonymousUser(), run.id)
        connected, code = await socket.connect()
        assert not connected and code == 4401

    async_to_sync(scenario)()


def test_a_socket_for_a_run_that_does_not_exist_is_closed(user):
    async def scenario():
        connected, code = await connect(user, 424242).connect()
        assert not connected and code == 4404

    async_to_sync(scenario)()
