"""What an attempt consumed and cost, in the database: written with the attempt's end.

The supervisor measures (runs/executors/usage.py), the engine prices (runs/engine/usage.py);
here the figures become TaskRun columns, priced at the settings of the moment the attempt ends,
and their sums on the Run grow in the same transaction (``add_to_run``, from
``transitions.end_attempt``), so pages read one row instead of summing attempts.
"""

import time

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from runs.engine.usage import attempt_cost
from runs.models import Run


def usage_fields(outcome) -> dict:
    """The TaskRun columns of a supervised attempt that is about to be recorded as ended: its
    usage and cost (when measured) and ``cleanup_duration_ms``, from its process's end to now."""
    fields = {}
    if outcome.ended_at is not None:
        fields["cleanup_duration_ms"] = max(0, round((time.monotonic() - outcome.ended_at) * 1000))
    usage = outcome.usage
    if usage is not None:
        fields.update(
            cpu_seconds=usage.cpu_seconds,
            peak_memory_bytes=usage.peak_memory_bytes,
            read_bytes=usage.read_bytes,
            written_bytes=usage.written_bytes,
            # An unknown peak (runs/executors/usage.py) prices no memory rather than a guess.
            cost=attempt_cost(cpu_seconds=usage.cpu_seconds, peak_memory_bytes=usage.peak_memory_bytes or 0,
                              execution_seconds=outcome.duration_ms / 1000,
                              price_per_cpu_hour=settings.LAKEFLOW_PRICE_PER_CPU_HOUR,
                              price_per_gb_hour=settings.LAKEFLOW_PRICE_PER_GB_HOUR),
        )
    return fields


def add_to_run(run_id, fields) -> None:
    """Add an ended attempt's CPU seconds and cost to its run's sums (F expressions: concurrent
    attempts of one run add theirs without reading the row). Nothing for an unmeasured attempt."""
    if fields.get("cpu_seconds") is None:
        return
    Run.objects.filter(id=run_id).update(
        cpu_seconds=Coalesce(F("cpu_seconds"), Value(0.0)) + fields["cpu_seconds"],
        cost=Coalesce(F("cost"), Value(0.0)) + (fields.get("cost") or 0.0),
    )
