"""The notification destinations the job form offers (jobs/form_fields.py asks; jobs never
imports this app)."""

from jobs.form_fields import destination_choices_provider
from notifications.models import Destination

TYPE_LABELS = {"EMAIL": "email", "SLACK": "Slack", "MICROSOFT_TEAMS": "Microsoft Teams", "PAGERDUTY": "PagerDuty",
               "WEBHOOK": "webhook"}


@destination_choices_provider
def destination_choices():
    """(id, "display name (type)") of every destination, by name."""
    return [(id, f"{name} ({TYPE_LABELS.get(kind, kind)})")
            for id, name, kind in Destination.objects.values_list("id", "display_name", "destination_type")]
