from django import template

register = template.Library()


@register.filter
def duration(delta):
    """A timedelta in its two largest units: "3 d 4 h", "25 min", "40 s"."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


SOURCE_LABELS = {"sql": "from its SQL", "openlineage": "OpenLineage", "declared": "declared", "trigger": "trigger"}


@register.filter
def capture_source(source):
    """How an edge was captured, as the run card says it."""
    return SOURCE_LABELS.get(source, source)
