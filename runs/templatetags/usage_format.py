"""What attempts and runs consumed, as the run page, the job page and the Usage page show it. A
figure nobody measured (NULL: a condition task, an attempt from before measuring) reads "not
measured", never 0."""

import math

from django import template
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

register = template.Library()

NOT_MEASURED = "not measured"


def money(amount):
    """Two decimals, or as many as show two significant digits of a small amount: an attempt that
    burnt a CPU-second costs a few millionths."""
    if amount == 0:
        return "0.00"
    decimals = min(8, max(2, 1 - math.floor(math.log10(abs(amount)))))
    return f"{amount:,.{decimals}f}"


@register.filter
def cost(amount):
    return NOT_MEASURED if amount is None else f"{money(amount)} {settings.LAKEFLOW_COST_CURRENCY}"


@register.filter
def cost_amount(amount):
    """Without the currency, for a table that names it once."""
    return NOT_MEASURED if amount is None else money(amount)


@register.simple_tag
def currency():
    return settings.LAKEFLOW_COST_CURRENCY


@register.filter
def cpu(seconds):
    if seconds is None:
        return NOT_MEASURED
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:,.0f} s"


@register.filter
def byte_size(count):
    return NOT_MEASURED if count is None else filesizeformat(count)


@register.filter
def span(milliseconds):
    """Milliseconds as "850 ms", "12.4 s", "3 min 5 s", "2 h 10 min"."""
    if milliseconds is None:
        return NOT_MEASURED
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def seconds_span(seconds):
    return NOT_MEASURED if seconds is None else span(seconds * 1000)


@register.filter
def phases(attempt):
    """An attempt's wall time in the phases runs/get names, in ms: queue (handed to the broker ->
    started), setup (git checkout and environment build, done after the start), execution (the
    rest) and cleanup (process end -> results written). None where unknown; a setup of "none" for
    an attempt that started without one."""
    now = timezone.now()

    def between(start, end):
        return max(0, round(((end or now) - start).total_seconds() * 1000)) if start else None

    started = attempt.started_at is not None
    total = between(attempt.started_at, attempt.ended_at)
    setup, cleanup = attempt.setup_duration_ms, attempt.cleanup_duration_ms
    execution = None if total is None else max(0, total - (setup or 0) - (cleanup or 0))
    return [
        {"name": "queue", "ms": between(attempt.queued_at, attempt.started_at or attempt.ended_at)},
        {"name": "setup", "ms": setup, "none": started and setup is None},
        {"name": "execution", "ms": execution},
        {"name": "cleanup", "ms": cleanup},
    ]
