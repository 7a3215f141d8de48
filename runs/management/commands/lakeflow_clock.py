import signal

from django.core.management.base import BaseCommand

from runs.clock import run_clock, start_node_services
from runs.environments import start_cleaning_environments
from runs.reactions import reacting_in_workers

SERVICE_STOP_SECONDS = 30  # a node's stop waits this long at most for its services' current work


class Command(BaseCommand):
    help = ("Run the cluster clock (retries, timeouts, reaper; one active per cluster) and this node's clean-up "
            "of its host's unused environments; started by qcluster.")

    def handle(self, *args, **options):
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        start_cleaning_environments(lambda: bool(stopping))  # every node, leader or standby
        services = start_node_services(lambda: bool(stopping))
        with reacting_in_workers():  # the clock's time is the schedules'
            run_clock(lambda: bool(stopping))
        for thread in services:  # what they are doing (a notification being sent) ends first
            thread.join(timeout=SERVICE_STOP_SECONDS)
