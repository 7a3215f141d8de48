"""The demo job `serve` creates on a fresh installation: a diamond of four Python tasks."""

from pathlib import Path

DEMO_NAME = "Demo: diamond"
HERE = Path(__file__).resolve().parent


def demo_settings():
    def script(name, *parameters):
        return {"python_file": str(HERE / f"{name}.py"), "parameters": list(parameters)}

    return {
        "name": DEMO_NAME,
        "description": "Four Python tasks: extract, two transforms in parallel, then a report.",
        "tags": {"demo": "true"},
        "parameters": [{"name": "greeting", "default": "hello"}],
        "max_concurrent_runs": 1,
        "queue": {"enabled": True},
        "tasks": [
            {"task_key": "extract", "spark_python_task": script("extract", "{{job.parameters.greeting}}")},
            {"task_key": "transform_a", "depends_on": [{"task_key": "extract"}],
             "spark_python_task": script("transform", "transform_a")},
            {"task_key": "transform_b", "depends_on": [{"task_key": "extract"}],
             "spark_python_task": script("transform", "transform_b")},
            {"task_key": "report", "depends_on": [{"task_key": "transform_a"}, {"task_key": "transform_b"}],
             "spark_python_task": script("report", "run", "{{job.run_id}}"), "max_retries": 1},
        ],
    }


def ensure_demo_job(user):
    """Create the demo job unless a job of that name exists; returns (job, created)."""
    from jobs.models import Job
    from jobs.spec.settings import validate_job_settings

    existing = Job.objects.filter(kind=Job.Kind.JOB, name=DEMO_NAME, deleted_at__isnull=True).first()
    if existing:
        return existing, False
    job = Job(kind=Job.Kind.JOB, creator=user)
    job.save_version(validate_job_settings(demo_settings()), user)
    return job, True
