"""OpenLineage out: every attempt's START and COMPLETE / FAIL / ABORT event, with the datasets
it read and wrote, sent to the configured endpoint (Marquez, DataHub, OpenMetadata) with
openlineage-python's HTTP transport.

From the event outbox: a reaction to task.running / task.finished writes a Delivery row (in
the reaction's transaction, once); the clock's step sends what is due, and a failed send waits
2^tries seconds (at most an hour) before the next try, MAX_TRIES in all. A run never waits for
it and never fails because of it; each Delivery's state is in the admin. The event is built at
send time, so edges captured after the task ended (its SQL, late OpenLineage events) are in it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from lineage.models import Delivery, Edge
from runs.attempt_credentials import NAMESPACE, job_run_openlineage_id, openlineage_run_id
from runs.clock import clock_step
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from runs.reactions import reacts_to

log = logging.getLogger(__name__)

MAX_TRIES = 10
BATCH = 50
SEND_TIMEOUT_SECONDS = 3.0
PRODUCER = "https://github.com/lakeflow-jobs/lakeflow#lakeflow"
ENDED = {R.SUCCESS: "COMPLETE", R.SUCCESS_WITH_FAILURES: "COMPLETE", R.CANCELED: "ABORT"}


def exporting(event=None):
    return bool(settings.LAKEFLOW_OPENLINEAGE_EXPORT_URL)


@reacts_to("task.running", "task.finished", when=exporting)
def queue_openlineage_event(event):
    if event.type == "task.running":
        event_type = "START"
    else:
        event_type = ENDED.get(event.data.get("result_state"), "FAIL")
    Delivery.objects.get_or_create(task_run_id=event.task_run_id, event_type=event_type,
                                   defaults=dict(body={"event_time": event.at.isoformat()}, next_try_at=event.at))


@clock_step
def deliver_openlineage_events(now):
    """Send what is due; stop at the first failure (the endpoint is likely down for all)."""
    if not exporting():
        return 0
    sent = 0
    for delivery in Delivery.objects.filter(next_try_at__lte=now).order_by("id")[:BATCH]:
        try:
            _transport().emit(openlineage_event(delivery))
        except Exception as exc:
            tries = delivery.tries + 1
            retry = None if tries >= MAX_TRIES else now + timedelta(seconds=min(2 ** tries, 3600))
            Delivery.objects.filter(id=delivery.id).update(tries=tries, next_try_at=retry,
                                                           error=f"{type(exc).__name__}: {exc}"[:2000])
            log.warning("OpenLineage delivery %s failed (try %s): %s", delivery.id, tries, exc)
            break
        Delivery.objects.filter(id=delivery.id).update(tries=delivery.tries + 1, next_try_at=None,
                                                       delivered_at=now, error="")
        sent += 1
    return sent


def _transport():
    from openlineage.client.transport.http import HttpConfig, HttpTransport, create_token_provider

    auth = {"type": "api_key", "apiKey": settings.LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY} \
        if settings.LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY else {}
    # Our own outbox retries; the transport's retries would only hold up the clock.
    return HttpTransport(HttpConfig(url=settings.LAKEFLOW_OPENLINEAGE_EXPORT_URL, timeout=SEND_TIMEOUT_SECONDS,
                                    auth=create_token_provider(auth), retry={"total": 0}))


def openlineage_event(delivery):
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import parent_run

    attempt = TaskRun.objects.select_related("run").get(id=delivery.task_run_id)
    job_name = f"job_{attempt.run.job_id}"
    parent = parent_run.ParentRunFacet(run=parent_run.Run(runId=job_run_openlineage_id(attempt.run_id)),
                                       job=parent_run.Job(namespace=NAMESPACE, name=job_name))
    inputs, outputs = [], []
    if delivery.event_type != "START":
        edges = Edge.objects.filter(Q(task_run_id=attempt.id)).select_related("dataset").order_by("id")
        seen = set()
        for edge in edges:
            key = (edge.direction, edge.dataset.name)
            if key in seen:
                continue
            seen.add(key)
            namespace, name = dataset_address(edge.dataset)
            (inputs if edge.direction == "read" else outputs).append(
                (InputDataset if edge.direction == "read" else OutputDataset)(namespace=namespace, name=name))
    return RunEvent(eventType=RunState(delivery.event_type), eventTime=delivery.body["event_time"],
                    run=Run(runId=openlineage_run_id(attempt.id), facets={"parent": parent}),
                    job=Job(namespace=NAMESPACE, name=f"{job_name}.{attempt.task_key}"),
                    producer=PRODUCER, inputs=inputs, outputs=outputs)


def dataset_address(dataset):
    """(namespace, name) of one of our datasets in OpenLineage: tables in ours, paths as files."""
    if dataset.kind == "TABLE":
        return NAMESPACE, dataset.name
    if dataset.name.startswith("/"):
        return "file", dataset.name
    scheme, _, rest = dataset.name.partition(":")
    return f"{scheme}:", rest
