"""The Backfill form of a job: its fields become a BackfillRequest, checked by the same
plan_backfill as the API's, whose problems are put back next to the fields they concern.

The range is typed as dates or date-times (`2024-01-31`, `2024-01-31T06:00`) in the form's time
zone; an end given as a date includes that day (the API's end_time is excluded: here it is the
next midnight)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout
from django import forms

from backfills.planning import MAX_CONCURRENT_RUNS, MAX_INTERVAL, BackfillRequest
from jobs.spec.documents import DocumentRefused, parse_json
from runs.engine.backfill import INTERVAL_UNITS, Order, ReprocessPolicy

POLICY_LABELS = {"ALL": "All slots", "MISSING": "Missing slots only (no run yet)",
                 "FAILED": "Failed slots only (their latest run failed)"}
ORDER_LABELS = {"OLDEST_FIRST": "Oldest first", "NEWEST_FIRST": "Newest first"}
# The form field a planning problem's field belongs to.
FIELD_OF = {"start_time": "start", "end_time": "end", "interval": "interval", "interval.interval": "interval",
            "interval.unit": "unit", "timezone_id": "timezone_id", "parameter": "parameter",
            "job_parameters": "parameters_json", "reprocess_policy": "reprocess_policy", "order": "order",
            "max_concurrent_runs": "max_concurrent_runs"}
RANGE_HELP = "A date (2024-01-31) or a date and time (2024-01-31T06:00), in the time zone below."


class BackfillForm(forms.Form):
    use_required_attribute = False  # the server checks, as the API does

    start = forms.CharField(label="From", help_text=RANGE_HELP,
                            widget=forms.TextInput(attrs={"placeholder": "2024-01-01", "autocomplete": "off"}))
    end = forms.CharField(label="To", help_text="A date includes that whole day; a date and time is excluded.",
                          widget=forms.TextInput(attrs={"placeholder": "2024-01-31", "autocomplete": "off"}))
    interval = forms.IntegerField(required=False, min_value=1, max_value=MAX_INTERVAL, label="Every")
    unit = forms.ChoiceField(required=False, label="Unit")
    timezone_id = forms.CharField(label="Time zone", initial="UTC", max_length=100)
    parameter = forms.ChoiceField(required=False, label="Parameter to fill with each slot")
    reprocess_policy = forms.ChoiceField(choices=[(p.value, POLICY_LABELS[p.value]) for p in ReprocessPolicy],
                                         initial="ALL", label="Slots to run")
    order = forms.ChoiceField(choices=[(o.value, ORDER_LABELS[o.value]) for o in Order], initial="OLDEST_FIRST")
    max_concurrent_runs = forms.IntegerField(min_value=1, max_value=MAX_CONCURRENT_RUNS, label="Runs at once",
                                             help_text="On top of the job's own max_concurrent_runs.")
    parameters_json = forms.CharField(
        required=False, label="Other job parameters (JSON)", widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Strings; {{backfill.iso_date}} and {{job.trigger.time.*}} are each slot\'s, e.g. '
                  '{"region": "eu", "since": "{{backfill.iso_date}}"}.')

    def __init__(self, *args, job, schedule_zone=None, job_limit=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.has_schedule = schedule_zone is not None
        no_interval = "the job's schedule" if self.has_schedule else "choose one"
        self.fields["unit"].choices = [("", f"({no_interval})")] + [(u, u.lower()) for u in INTERVAL_UNITS]
        names = [d.get("name") for d in job.settings.get("parameters") or []]
        self.fields["parameter"].choices = [("", "(the first that looks like a date)")] + [(n, n) for n in names]
        self.fields["timezone_id"].initial = schedule_zone or "UTC"
        self.fields["max_concurrent_runs"].initial = min(max(job_limit, 1), MAX_CONCURRENT_RUNS)
        if not self.has_schedule:
            self.fields["interval"].initial, self.fields["unit"].initial = 1, "DAYS"
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Div(Div(Field("start"), css_class="col-md-6"), Div(Field("end"), css_class="col-md-6"), css_class="row"),
            Div(Div(Field("interval"), css_class="col-md-3"), Div(Field("unit"), css_class="col-md-3"),
                Div(Field("timezone_id"), css_class="col-md-6"), css_class="row"),
            Div(Div(Field("parameter"), css_class="col-md-6"), Div(Field("reprocess_policy"), css_class="col-md-6"),
                css_class="row"),
            Div(Div(Field("order"), css_class="col-md-6"), Div(Field("max_concurrent_runs"), css_class="col-md-6"),
                css_class="row"),
            Field("parameters_json"),
        )

    def clean(self):
        data = super().clean()
        if (data.get("interval") is None) != (not data.get("unit")):
            self.add_error("interval", "Give both the number and the unit, or neither (the job's schedule).")
        return data

    def request(self):
        """The BackfillRequest of a valid form; None (with errors added) if it cannot be read."""
        data = self.cleaned_data
        try:
            zone = ZoneInfo(data["timezone_id"])
        except (KeyError, ValueError, OSError):
            self.add_error("timezone_id", "Unknown time zone: use an IANA name such as Europe/Berlin.")
            return None
        start, end = self.moment("start", zone, end=False), self.moment("end", zone, end=True)
        extra = self.extra_parameters()
        if start is None or end is None or extra is None:
            return None
        interval = {"interval": data["interval"], "unit": data["unit"]} if data.get("unit") else None
        return BackfillRequest(
            start_time=start, end_time=end, interval=interval,
            timezone_id=data["timezone_id"] if interval else None, parameter=data.get("parameter") or None,
            reprocess_policy=data["reprocess_policy"], order=data["order"],
            max_concurrent_runs=data["max_concurrent_runs"], job_parameters=extra)

    def moment(self, name, zone, *, end):
        text = self.cleaned_data[name].strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            self.add_error(name, "Not a date (2024-01-31) or a date and time (2024-01-31T06:00).")
            return None
        if value.tzinfo is not None:
            return value
        if end and "T" not in text and " " not in text:  # a date: the whole day is in the range
            value = datetime.combine(value.date() + timedelta(days=1), time())
        return value.replace(tzinfo=zone)

    def extra_parameters(self):
        raw = self.cleaned_data.get("parameters_json", "").strip()
        if not raw:
            return {}
        try:
            value = parse_json(raw)
        except (DocumentRefused, ValueError) as exc:
            self.add_error("parameters_json", f"Not valid JSON: {exc}")
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.add_error("parameters_json", 'A JSON object of strings, e.g. {"region": "eu"}.')
            return None
        return value

    def show_problem(self, problem):
        """Put a planning problem (BackfillInvalid) next to its field."""
        self.add_error(FIELD_OF.get(problem.field), problem.message)
