import signal

from django.core.management.base import BaseCommand

from runs.clock import run_clock


class Command(BaseCommand):
    help = "Run the cluster clock (retries, timeouts, reaper); started by qcluster, one active per cluster."

    def handle(self, *args, **options):
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        run_clock(lambda: bool(stopping))
