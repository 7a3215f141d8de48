"""The run page's websocket: a new snapshot of the run each time its events move on.

Each socket looks for a RunEvent newer than the last it sent, every LAKEFLOW_LIVE_POLL_SECONDS
(one indexed query), or at once when a worker nudges the run's group through channels-redis.
A finished run is looked at once a second only: a repair can still wake it up.
"""

import asyncio
import collections

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from jobs.permissions import forget_caller, may
from jobs.spec.access import Action
from runs.live import latest_event, run_group, run_snapshot
from runs.models import Run

BIG_RUN_TASKS = 200


class RunConsumer(AsyncJsonWebsocketConsumer):
    # Open sockets per user in this process: a user (or a script with their session) cannot hold
    # an unbounded number of sockets, each polling the database.
    open_per_user = collections.Counter()
    counted = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if self.open_per_user[user.pk] >= settings.LAKEFLOW_MAX_SOCKETS_PER_USER:
            await self.close(code=4429)  # too many: the page falls back to polling
            return
        self.open_per_user[user.pk] += 1
        self.counted = user.pk
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        job_id = await database_sync_to_async(
            Run.objects.filter(id=self.run_id).values_list("job_id", flat=True).first)()
        if job_id is None:
            await self.close(code=4404)
            return
        if not await database_sync_to_async(may)(user, job_id, Action.VIEW):
            await self.close(code=4403)  # a run the user may not view: no snapshot, ever
            return
        self.user, self.job_id = user, job_id
        self.nudged = asyncio.Event()
        await self.channel_layer.group_add(run_group(self.run_id), self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(self.watch())

    async def disconnect(self, code):
        if self.counted is not None:
            self.open_per_user[self.counted] -= 1
            if self.open_per_user[self.counted] <= 0:
                del self.open_per_user[self.counted]
            self.counted = None
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.cancel()
        if hasattr(self, "run_id"):
            await self.channel_layer.group_discard(run_group(self.run_id), self.channel_name)

    async def run_changed(self, message):
        self.nudged.set()

    async def watch(self):
        sent_event, finished, big = -1, False, False
        while True:
            event_id, _ = await database_sync_to_async(latest_event)(self.run_id)
            if event_id != sent_event:
                if not await database_sync_to_async(self.still_allowed)():
                    await self.close(code=4403)  # the grant was taken away since the socket opened
                    return
                snapshot = await database_sync_to_async(self.snapshot)()
                await self.send_json(snapshot)
                sent_event, finished = snapshot["event_id"], snapshot["finished"]
                big = len(snapshot["nodes"]) > BIG_RUN_TASKS
            # A finished run can only wake up by a repair; a big run's snapshot costs a
            # thousand rows, so it goes out at most once a second.
            poll = 1.0 if finished or big else settings.LAKEFLOW_LIVE_POLL_SECONDS
            try:
                await asyncio.wait_for(self.nudged.wait(), timeout=poll)
            except asyncio.TimeoutError:
                pass
            self.nudged.clear()

    def still_allowed(self):
        forget_caller(self.user)  # read the user's groups again: they may have changed
        return may(self.user, self.job_id, Action.VIEW)

    def snapshot(self):
        run = Run.objects.select_related("job_version").get(id=self.run_id)
        return run_snapshot(run)
