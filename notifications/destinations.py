"""Notification destinations: the save-time check that a job names existing ones."""

from jobs.spec.notifications import destination_ids
from jobs.spec.settings import Problem
from notifications.models import Destination


def unknown_destinations(settings):
    """A Problem per webhook_notifications id that names no destination."""
    named = destination_ids(settings)
    if not named:
        return []
    existing = set(Destination.objects.filter(id__in={i for _, i in named}).values_list("id", flat=True))
    return [Problem(path, f"there is no notification destination with id {destination!r}")
            for path, destination in named if destination not in existing]
