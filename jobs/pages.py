"""What the dashboard's job pages share (here and in runs): finding a job, and reading the
parameters a Run-now or Repair dialog posts."""

import json

from django.http import Http404

from jobs.models import Job
from jobs.spec.documents import DocumentRefused, check_document, parse_json


def live_jobs():
    return Job.objects.filter(kind=Job.Kind.JOB, deleted_at__isnull=True)


def find_job_or_404(job_id):
    job = live_jobs().select_related("current_version", "creator").filter(id=job_id).first()
    if job is None:
        raise Http404(f"Job {job_id} does not exist")
    return job


def posted_parameters(post):
    """Job parameters from a Run-now or Repair dialog: a `param-<name>` field each, or JSON
    (which wins); None when the dialog sent none. Raises ValueError saying what is wrong."""
    raw = post.get("parameters_json", "").strip()
    if raw:
        try:
            value = parse_json(raw)
        except DocumentRefused as exc:
            raise ValueError(f"The parameters are {exc.message}") from None
        except ValueError as exc:
            raise ValueError(f"The parameters are not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError('The parameters must be a JSON object, e.g. {"date": "2026-01-01"}')
        parameters = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    else:
        parameters = {key.removeprefix("param-"): value for key, value in post.items() if key.startswith("param-")}
    try:
        check_document(parameters)
    except DocumentRefused as exc:
        raise ValueError(f"Parameter {exc}") from None
    return parameters or None
