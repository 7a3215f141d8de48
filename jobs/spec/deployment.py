"""``deployment`` and ``edit_mode``: who manages a job's settings (pure).

A job deployed by a bundle (`lakeflow bundle deploy`, `databricks bundle deploy`) carries
``deployment: {kind: BUNDLE, metadata_file_path: <state_path>/metadata.json}`` and usually
``edit_mode: UI_LOCKED``: the dashboard then refuses edits (the bundle's files are the source),
while the API keeps accepting jobs/update and jobs/reset, which is how the bundle redeploys.
"""

from __future__ import annotations

from typing import Any

from .checker import Checker

DEPLOYMENT_KINDS = ("BUNDLE", "SYSTEM_MANAGED")
# The SDK's JobDeployment (0.167): kind is required; the rest are strings.
DEPLOYMENT_STRINGS = ("metadata_file_path", "deployment_id", "version_id")
MAX_METADATA_PATH_CHARS = 4096
UI_LOCKED = "UI_LOCKED"
LOCKED_REASON = ("This job is managed by a bundle: change its source and redeploy, "
                 "or disconnect it from the bundle")


def check_deployment(c: Checker, data: dict) -> None:
    deployment = c.obj(data, "", "deployment")
    if deployment is None:
        return
    c.choice(deployment, "deployment", "kind", DEPLOYMENT_KINDS, required=True)
    for key in DEPLOYMENT_STRINGS:
        value = c.string(deployment, "deployment", key)
        if value is not None and len(value) > MAX_METADATA_PATH_CHARS:
            c.add(f"deployment.{key}", f"must be at most {MAX_METADATA_PATH_CHARS:,} characters")
    for key in sorted(set(deployment) - {"kind", *DEPLOYMENT_STRINGS}):
        c.add(f"deployment.{key}", "is not a field of deployment (kind, metadata_file_path, deployment_id, "
                                   "version_id)")


def is_ui_locked(settings: dict[str, Any]) -> bool:
    """Whether the dashboard must refuse to edit a job with these settings."""
    return settings.get("edit_mode") == UI_LOCKED


def bundle_metadata_path(settings: dict[str, Any]) -> str | None:
    """The metadata file of a bundle-deployed job (None for any other job)."""
    deployment = settings.get("deployment")
    if not isinstance(deployment, dict) or deployment.get("kind") != "BUNDLE":
        return None
    return deployment.get("metadata_file_path") or ""


def bundle_summary(metadata: Any, job_id: int | None = None) -> dict[str, str] | None:
    """What a job page says of the bundle in a deployment metadata document (the CLI's
    ``<state_path>/metadata.json``): name, target and, when the document lists the job, the file
    that defines it; None when the document does not name a bundle."""
    config = metadata.get("config") if isinstance(metadata, dict) else None
    bundle = config.get("bundle") if isinstance(config, dict) else None
    if not isinstance(bundle, dict) or not isinstance(bundle.get("name"), str) or not bundle["name"]:
        return None
    summary = {"name": bundle["name"], "target": str(bundle.get("target") or "")}
    git = bundle.get("git")
    if isinstance(git, dict):
        summary.update({key: str(git[key]) for key in ("origin_url", "branch", "commit") if git.get(key)})
    resources = config.get("resources")
    jobs = resources.get("jobs") if isinstance(resources, dict) else None
    for key, job in (jobs.items() if isinstance(jobs, dict) else ()):
        if isinstance(job, dict) and str(job.get("id")) == str(job_id):
            summary["resource_key"] = str(key)
            if isinstance(job.get("relative_path"), str):
                summary["relative_path"] = job["relative_path"]
    return summary
