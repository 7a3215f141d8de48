"""The destination form of the dashboard: its fields become the API's {display_name, config} and
are checked by the same function as the API's (notifications/destinations.py), whose problems are
put back next to the fields they concern.

Write-only inputs are named secret_* so that the audit log redacts them (audit/actions.py), and
are never filled in: left empty on an edit, the stored value is kept."""

import re

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout
from django import forms

from jobs.text_fields import LinesField
from notifications.destinations import BLOCK_OF_TYPE

TYPE_LABELS = {"EMAIL": "Email", "SLACK": "Slack (incoming webhook)", "MICROSOFT_TEAMS": "Microsoft Teams (incoming webhook)",
               "PAGERDUTY": "PagerDuty", "WEBHOOK": "Webhook (any HTTP endpoint)"}
# The form field each field of a config block is shown in.
FIELD_OF = {"addresses": "addresses", "url": "secret_url", "username": "secret_username",
            "password": "secret_password", "integration_key": "secret_integration_key"}
PROBLEM_PATH = re.compile(r"config\.\w+\.(?P<name>\w+)(\[(?P<index>[0-9]+)\])?")


def _when(types, *fields):
    """Shown only while destination_type is one of `types` (static/js/destinations.js)."""
    return Div(*fields, data_when_field="destination_type", data_when_value=" ".join(types))


class DestinationForm(forms.Form):
    use_required_attribute = False  # the server checks, as the API does

    display_name = forms.CharField(required=False, label="Name")
    destination_type = forms.ChoiceField(choices=list(TYPE_LABELS.items()), label="Type", initial="WEBHOOK")
    addresses = LinesField(required=False, label="Email addresses", help_text="One address per line, at most 100.")
    secret_url = forms.CharField(
        required=False, label="URL", max_length=4000,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="The http or https URL notifications are posted to; Slack and Teams call it an incoming webhook.")
    secret_integration_key = forms.CharField(
        required=False, label="Integration key", max_length=4000,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Of an Events API v2 integration on the PagerDuty service.")
    secret_username = forms.CharField(required=False, label="Username", max_length=4000,
                                      widget=forms.TextInput(attrs={"autocomplete": "off"}))
    secret_password = forms.CharField(required=False, label="Password", max_length=4000, strip=False,
                                      widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    remove_basic_auth = forms.BooleanField(required=False, label="Stop sending HTTP Basic authentication")

    def __init__(self, *args, destination=None, **kwargs):
        """`destination`: the one being edited (its secrets stay unless typed again)."""
        initial = kwargs.pop("initial", None) or {}
        if destination is not None:
            initial = {"display_name": destination.display_name, "destination_type": destination.destination_type,
                       "addresses": destination.config.get("addresses") or [], **initial}
        super().__init__(*args, initial=initial, **kwargs)
        self.destination = destination
        keep = "Leave empty to keep the current value"
        if destination is not None:
            for name in ("secret_url", "secret_integration_key", "secret_username", "secret_password"):
                self.fields[name].widget.attrs["placeholder"] = keep
        else:
            del self.fields["remove_basic_auth"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            "display_name", "destination_type",
            _when(["EMAIL"], "addresses"),
            _when(["SLACK", "MICROSOFT_TEAMS", "WEBHOOK"], Field("secret_url", css_class="font-monospace")),
            _when(["PAGERDUTY"], "secret_integration_key"),
            _when(["WEBHOOK"], Div(Div("secret_username", css_class="col-md-6"),
                                   Div("secret_password", css_class="col-md-6"), css_class="row g-3"),
                  *(["remove_basic_auth"] if destination is not None else [])),
        )

    def api_input(self):
        """(display_name, config) in the API's shape, from valid fields."""
        data = self.cleaned_data
        kind = data["destination_type"]
        fields = {}
        if kind == "EMAIL":
            if data["addresses"]:
                fields["addresses"] = data["addresses"]
        elif kind == "PAGERDUTY":
            if data["secret_integration_key"]:
                fields["integration_key"] = data["secret_integration_key"]
        else:
            if data["secret_url"]:
                fields["url"] = data["secret_url"]
            if kind == "WEBHOOK":
                if data.get("remove_basic_auth"):
                    fields.update(username="", password="")
                else:
                    fields.update({name: data[f"secret_{name}"] for name in ("username", "password")
                                   if data[f"secret_{name}"]})
        return data["display_name"], {BLOCK_OF_TYPE[kind]: fields}

    def show_problems(self, problems):
        """Put the check's problems next to the fields they concern."""
        for problem in problems:
            match = PROBLEM_PATH.fullmatch(problem.path)
            field = "display_name" if problem.path == "display_name" else FIELD_OF.get(match["name"]) if match else None
            if field in self.fields:
                line = f"line {int(match['index']) + 1}: " if match and match["index"] else ""
                self.add_error(field, line + problem.message)
            else:
                self.add_error(None, f"{problem.path}: {problem.message}")
