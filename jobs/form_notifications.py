"""Notifications and health rules in the job authoring form, the same fields on the job and on
each task: email addresses and destinations per event, the mutes, and the thresholds of the
health rules; read from a job's or a task's settings and written back over them."""

import re

from django import forms

from jobs.form_fields import DESTINATION_FIELDS, EMAIL_FIELDS, HEALTH_FIELDS, put
from jobs.spec.notifications import MAX_WEBHOOKS_PER_EVENT, OPS, health_threshold

EVENT_LABELS = {"on_start": "on start", "on_success": "on success", "on_failure": "on failure",
                "on_duration_warning_threshold_exceeded": "on duration warning",
                "on_streaming_backlog_exceeded": "on streaming backlog"}
HEALTH_LABELS = {"duration_warning_seconds": "Duration warning after (seconds)", "backlog_bytes": "Backlog bytes",
                 "backlog_records": "Backlog records", "backlog_seconds": "Backlog seconds",
                 "backlog_files": "Backlog files"}
MUTE_LABELS = {"no_alert_for_skipped_runs": "No failure alert when the run is skipped",
               "no_alert_for_canceled_runs": "No failure alert when the run is canceled",
               "alert_on_last_attempt": "Alert on the last attempt only"}
# Our default differs from Databricks' (notifications/rules.py): the checkbox starts checked.
MUTE_HELP = {"alert_on_last_attempt": "Checked (the default here): a failing task alerts once, when no retry will "
                                      "follow, and its retries send no start alerts. Unchecked: every failed "
                                      "attempt alerts, and so does every retry's start."}
DURATION_HELP = "Still running after this long: the duration warning goes out (nothing is stopped). Empty: no warning."
ADDRESS_SEPARATORS = re.compile(r"[,;\n]")


class AddressesField(forms.CharField):
    """Email addresses separated by commas or new lines; the validator checks each one."""

    widget = forms.Textarea(attrs={"rows": 1})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) and all(isinstance(a, str) for a in value) else value

    def to_python(self, value):
        return [address.strip() for address in ADDRESS_SEPARATORS.split(super().to_python(value)) if address.strip()]


class DestinationsWidget(forms.SelectMultiple):
    """A multi-select whose option with an empty value is a note ("none defined yet"), not a choice."""

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value == "":
            option["attrs"]["disabled"] = True
        return option


class DestinationsField(forms.MultipleChoiceField):
    """Ids of notification destinations. One that names none is not refused here: the server
    check says so, on this field, as the API would."""

    widget = DestinationsWidget(attrs={"size": 3, "data-max-chosen": MAX_WEBHOOKS_PER_EVENT})

    def to_python(self, value):
        return [id for id in super().to_python(value) if id]

    def valid_value(self, value):
        return True


def notification_fields(mutes):
    return {
        # Sent by every form that shows these fields: a POST without it (a page loaded before they
        # existed) leaves the notifications as they were instead of clearing them.
        "notifications_on_form": forms.BooleanField(required=False, initial=True, widget=forms.HiddenInput),
        **{name: AddressesField(required=False, label=f"Email {EVENT_LABELS[event]}")
           for name, event in EMAIL_FIELDS.items()},
        **{name: DestinationsField(required=False, label=f"Destinations {EVENT_LABELS[event]}")
           for name, event in DESTINATION_FIELDS.items()},
        **{mute: forms.BooleanField(required=False, label=MUTE_LABELS[mute], help_text=MUTE_HELP.get(mute, ""),
                                    initial=mute == "alert_on_last_attempt") for mute in mutes},
        **{name: forms.IntegerField(required=False, label=HEALTH_LABELS[name], widget=forms.NumberInput(attrs={"min": 1}),
                                    help_text=DURATION_HELP if name == "duration_warning_seconds" else "")
           for name in HEALTH_FIELDS},
    }


class NotificationFields:
    """Adds the notification and health fields to a form (`mutes`: its notification_settings);
    `destinations`: the (id, label) pairs to offer."""

    mutes = ()

    def __init__(self, *args, destinations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(notification_fields(self.mutes))
        known = {id for id, _ in destinations}
        for name in DESTINATION_FIELDS:
            field = self.fields[name]
            # An id no destination has (deleted since, or mistyped) stays chosen, so that saving
            # says so instead of dropping it.
            chosen = (field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
                      if self.is_bound else self.initial.get(name)) or []
            field.choices = [*destinations, *((id, f"{id} (no such destination)")
                                              for id in dict.fromkeys(chosen) if id and id not in known)]
            field.choices = field.choices or [("", "None defined yet")]


def notification_initial(block, mutes):
    """The notification fields' values for a job's or a task's settings."""
    emails, webhooks, settings = (block.get(key) if isinstance(block.get(key), dict) else {}
                                  for key in ("email_notifications", "webhook_notifications", "notification_settings"))
    return {
        **{name: emails[event] for name, event in EMAIL_FIELDS.items() if event in emails},
        **{name: [e["id"] for e in webhooks[event] if isinstance(e, dict) and isinstance(e.get("id"), str)]
           for name, event in DESTINATION_FIELDS.items() if isinstance(webhooks.get(event), list)},
        **{mute: settings.get(mute) is not False if mute == "alert_on_last_attempt" else settings.get(mute) is True
           for mute in mutes},
        **{name: health_threshold(block, metric) for name, metric in HEALTH_FIELDS.items()},
    }


def put_notifications(target, data, mutes):
    """A job's or a task's notification blocks and health rules from the form's cleaned data,
    over what `target` had: what the form does not show (other keys, on_maintenance_* lists,
    rules it does not model) stays as it was."""
    def emails(block):
        for name, event in EMAIL_FIELDS.items():
            put(block, event, data.get(name))

    def webhooks(block):
        for name, event in DESTINATION_FIELDS.items():
            put(block, event, _chosen_destinations(block.get(event), data.get(name) or []))

    def settings(block):
        for mute in mutes:
            put(block, mute, bool(data.get(mute)), default=mute == "alert_on_last_attempt")

    def health(block):
        put(block, "rules", _health_rules(block.get("rules"),
                                          {metric: data.get(name) for name, metric in HEALTH_FIELDS.items()}))

    for key, fill in (("email_notifications", emails), ("webhook_notifications", webhooks),
                      ("notification_settings", settings), ("health", health)):
        existed = isinstance(target.get(key), dict)
        block = target[key] if existed else {}
        fill(block)
        if existed or block:  # an absent block is added only to hold something
            target[key] = block


def _chosen_destinations(entries, ids):
    """webhook_notifications entries for the chosen ids: those already listed stay as and where
    they were (a select posts its options' order, not the list's), new ones follow."""
    kept = [e for e in entries if isinstance(e, dict) and e.get("id") in ids] if isinstance(entries, list) else []
    listed = {e["id"] for e in kept}
    return kept + [{"id": id} for id in ids if id not in listed]


def _health_rules(rules, thresholds):
    """health.rules with each form metric's rule at its threshold (None: no rule), where it was;
    new rules go last."""
    result, seen = [], set()
    for rule in rules if isinstance(rules, list) else []:
        metric = rule.get("metric") if isinstance(rule, dict) else None
        if metric not in thresholds or metric in seen:  # not the form's (the validator speaks of it)
            result.append(rule)
            continue
        seen.add(metric)
        if thresholds[metric] is not None:
            result.append(rule if rule.get("value") == thresholds[metric] else {**rule, "value": thresholds[metric]})
    return result + [{"metric": metric, "op": OPS[0], "value": value}
                     for metric, value in thresholds.items() if value is not None and metric not in seen]
