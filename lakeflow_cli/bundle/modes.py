"""``mode: development`` and ``presets``, applied to resolved resources as the CLI applies them.

development: names prefixed ``[dev <short name>] ``, a ``dev`` tag naming the user, schedules,
triggers and continuous runs paused, ``max_concurrent_runs`` 4 where unset. Explicit ``presets``
win over the mode's. production: the checks the CLI documents (a git branch named in the target
must be the checked-out one)."""

from lakeflow_cli.bundle.problems import Problem

PRESET_KEYS = {"name_prefix", "tags", "jobs_max_concurrent_runs", "trigger_pause_status", "pipelines_development",
               "source_linked_deployment", "artifacts_dynamic_version", "artifacts_suffix"}


def effective_presets(config, mode):
    user = config["workspace"]["current_user"]
    presets = {}
    if mode == "development":
        presets = {"name_prefix": f"[dev {user['short_name']}] ", "tags": {"dev": user["userName"]},
                   "jobs_max_concurrent_runs": 4, "trigger_pause_status": "PAUSED"}
    explicit = config.get("presets") or {}
    presets.update({key: value for key, value in explicit.items() if key != "tags"})
    if "tags" in explicit:
        presets["tags"] = {**presets.get("tags", {}), **explicit["tags"]}
    return presets


def check_presets(config):
    problems = []
    explicit = config.get("presets") or {}
    if not isinstance(explicit, dict):
        return [Problem("presets must be a mapping", config.where("presets"), "presets")]
    for key, value in explicit.items():
        at = explicit.where(key) if hasattr(explicit, "where") else None
        if key not in PRESET_KEYS:
            problems.append(Problem(f"unknown preset {key}", at, f"presets.{key}", "warning"))
        elif key == "trigger_pause_status" and value not in ("PAUSED", "UNPAUSED"):
            problems.append(Problem("trigger_pause_status must be PAUSED or UNPAUSED", at, f"presets.{key}"))
        elif key == "jobs_max_concurrent_runs" and (not isinstance(value, int) or isinstance(value, bool)
                                                     or value < 1):
            problems.append(Problem("jobs_max_concurrent_runs must be a positive integer", at, f"presets.{key}"))
        elif key == "tags" and not isinstance(value, dict):
            problems.append(Problem("tags must be a mapping", at, f"presets.{key}"))
    return problems


def apply_presets(config, mode):
    presets = effective_presets(config, mode)
    for job in ((config.get("resources") or {}).get("jobs") or {}).values():
        _apply_to_job(job, presets)
    for warehouse in ((config.get("resources") or {}).get("sql_warehouses") or {}).values():
        if presets.get("name_prefix") and isinstance(warehouse.get("name"), str):
            warehouse["name"] = presets["name_prefix"] + warehouse["name"]
    return presets


def _apply_to_job(job, presets):
    if presets.get("name_prefix") and isinstance(job.get("name"), str):
        job["name"] = presets["name_prefix"] + job["name"]
    if presets.get("tags"):
        job["tags"] = {**presets["tags"], **(job.get("tags") or {})}
    if "jobs_max_concurrent_runs" in presets and job.get("max_concurrent_runs") is None:
        job["max_concurrent_runs"] = presets["jobs_max_concurrent_runs"]
    status = presets.get("trigger_pause_status")
    if status:
        for name in ("schedule", "trigger", "continuous"):
            if isinstance(job.get(name), dict) and (status == "PAUSED" or "pause_status" not in job[name]):
                job[name]["pause_status"] = status


def production_problems(config, current_branch):
    """The checks of ``mode: production``."""
    problems = []
    git = (config.get("bundle") or {}).get("git") or {}
    wanted = git.get("branch") if isinstance(git, dict) else None
    if wanted and current_branch and wanted != current_branch:
        problems.append(Problem(f"not on the right Git branch:\n  expected according to configuration: {wanted}\n"
                                f"  actual: {current_branch}\nuse --force to override",
                                git.where("branch") if hasattr(git, "where") else None, "bundle.git.branch"))
    return problems
